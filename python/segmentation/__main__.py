import os

# Idle OpenMP threads (scikit-learn's, openTSNE's) sleep instead of spinning. Read once, when
# each library's OpenMP runtime loads, so it is set before any of them is imported. It changes
# no result (only how a waiting thread waits), but on a busy machine, or one with fewer free
# cores than threads, spinning threads steal the cores the working ones need: measured on a
# loaded 2-core machine, openTSNE's 2-thread map of 1,000 points took 19 s instead of 3 s.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import logging
import sys

from .cli import main

code = main()
# Leave without the interpreter's teardown of scikit-learn, WeasyPrint and matplotlib
# (about 0.3 s per step, paid by every `make all`). Every command has closed its files
# and warehouse connections by now (and `publish` checkpoints the working copy before
# moving it, so even a write-ahead log left behind would not be lost); only buffered
# output remains, flushed here.
logging.shutdown()
# ...but multiprocessing's own exit work runs: dbt's locks are named semaphores, which the
# resource tracker would otherwise report as leaked once this process is gone
if (multiprocessing_util := sys.modules.get("multiprocessing.util")) is not None:
    multiprocessing_util._exit_function()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
