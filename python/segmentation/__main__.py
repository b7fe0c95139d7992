import logging
import os
import sys

from .cli import main

code = main()
# Leave without the interpreter's teardown of scikit-learn, WeasyPrint and matplotlib
# (about 0.3 s per step, paid by every `make all`). Every command has closed its files
# and warehouse connections by now (and `publish` checkpoints the working copy before
# moving it, so even a write-ahead log left behind would not be lost); only buffered
# output remains, flushed here.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
