"""``python -m tailor.analytics``: run the analytics consumer with the configured settings."""

import sys

from tailor.analytics.consumer import main

if __name__ == "__main__":
    sys.exit(main())
