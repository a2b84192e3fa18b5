"""python -m app: the same as the clipscape command."""
import sys

from app.launch import main

sys.exit(main())
