#!/bin/sh
# Put Clipscape in the Linux desktop's application menu (and "Open with" for folders and images).
# Usage: packaging/install-linux-desktop.sh [PATH_TO_clipscape]   (default: the one on PATH)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exe=${1:-$(command -v clipscape || true)}
[ -n "$exe" ] && [ -x "$exe" ] || { echo "usage: $0 PATH_TO_clipscape (no clipscape on PATH)" >&2; exit 2; }
apps=${XDG_DATA_HOME:-$HOME/.local/share}/applications
icons=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps
mkdir -p "$apps" "$icons"
sed "s|^Exec=clipscape|Exec=$exe|" "$here/clipscape.desktop" > "$apps/clipscape.desktop"
cp "$here/../resources/clipscape.svg" "$icons/clipscape.svg"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "installed $apps/clipscape.desktop (runs $exe)"
