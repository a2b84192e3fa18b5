"""The map: view.py (the widget, drawn from the session), scatter.py (the fast point layer),
detail.py (which points are drawn: a sample zoomed out, those in view zoomed in),
thumbs_layer.py (the images at close zoom), mouse.py (hover, click, box and lasso), legend.py,
overlays.py (colour bar, hover card) and colours.py (every point's colour from the session)."""
from clipscape.app.map.view import MapView

__all__ = ["MapView"]
