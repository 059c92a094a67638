"""`python -m grafana`: regenerate the dashboards (see grafana/generate.py)."""

import sys

from grafana.generate import main

sys.exit(main())
