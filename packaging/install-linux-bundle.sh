#!/bin/sh
# Install the Clipscape bundle for this user (no root), into the XDG folders; or uninstall it.
#
#   ./install.sh              copy this bundle folder to $XDG_DATA_HOME/clipscape/app, link
#                             ~/.local/bin/clipscape, add the desktop entry (application menu,
#                             "Open With ▸ Clipscape" for folders and images) and the icons
#   ./install.sh --here       the same, but run the bundle from where it is (no copy)
#   ./install.sh uninstall    remove all of that again (settings and caches are kept:
#                             ~/.config/Clipscape, ~/.cache/clipscape)
#
# This script sits at the top of the bundle folder (packaging/install-linux-bundle.sh in the
# repository). XDG_DATA_HOME defaults to ~/.local/share.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
app=$data/clipscape/app
bin=$HOME/.local/bin
entry=$data/applications/clipscape.desktop
icons=$data/icons/hicolor
sizes="16 24 32 48 64 128 256 512"

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$icons" 2>/dev/null || true
}

uninstall() {
  if [ -f "$app/clipscape" ] && [ -f "$app/install.sh" ]; then rm -rf "$app"; fi
  rmdir "$data/clipscape" 2>/dev/null || true
  if [ -L "$bin/clipscape" ]; then rm -f "$bin/clipscape"; fi
  rm -f "$entry" "$icons/scalable/apps/clipscape.svg"
  for s in $sizes; do rm -f "$icons/${s}x${s}/apps/clipscape.png"; done
  refresh
  echo "uninstalled Clipscape (settings in ~/.config/Clipscape and caches in ~/.cache/clipscape are kept)"
}

install() {
  [ -x "$here/clipscape" ] && [ -d "$here/share" ] || { echo "$0: run me from the Clipscape bundle folder" >&2; exit 2; }
  target=$here
  if [ "${1:-}" != "--here" ]; then
    target=$app
    if [ "$here" != "$app" ]; then
      rm -rf "$app.new" && mkdir -p "$(dirname "$app")"
      cp -a "$here" "$app.new"
      rm -rf "$app" && mv "$app.new" "$app"
    fi
  fi
  mkdir -p "$bin" "$(dirname "$entry")" "$icons/scalable/apps"
  ln -sfn "$target/clipscape" "$bin/clipscape"
  # Exec and TryExec with the absolute path, quoted as the desktop entry spec asks
  sed -e "s|^Exec=clipscape|Exec=\"$target/clipscape\"|" -e "s|^TryExec=.*|TryExec=$target/clipscape|" \
    "$target/share/clipscape.desktop" > "$entry"
  cp "$target/share/clipscape.svg" "$icons/scalable/apps/clipscape.svg"
  for s in $sizes; do
    if [ -f "$target/share/clipscape-$s.png" ]; then
      mkdir -p "$icons/${s}x${s}/apps" && cp "$target/share/clipscape-$s.png" "$icons/${s}x${s}/apps/clipscape.png"
    fi
  done
  refresh
  echo "installed Clipscape: $entry runs $target/clipscape"
}

case "${1:-install}" in
  uninstall) uninstall ;;
  install) install "${2:-}" ;;
  --here) install --here ;;
  *) echo "usage: $0 [install [--here] | --here | uninstall]" >&2; exit 2 ;;
esac
