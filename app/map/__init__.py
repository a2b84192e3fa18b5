"""The map: view.py (the widget, drawn from the session), scatter.py (the fast point layer),
mouse.py (hover, click, box and lasso), legend.py, overlays.py (colour bar, hover card) and
colours.py (every point's colour from the session)."""
from clipscape.app.map.view import MapView

__all__ = ["MapView"]
