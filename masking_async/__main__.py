import sys

from masking_async.cli import main

sys.exit(main())
