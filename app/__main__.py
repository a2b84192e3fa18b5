"""python -m clipscape.app: the same as the clipscape command."""
import sys

from clipscape.app.launch import main

sys.exit(main())
