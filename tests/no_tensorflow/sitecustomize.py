"""Makes this Python behave as if TensorFlow were not installed, as on the lent GPU machines.

On PYTHONPATH it is imported at start-up by every process, children included.
Each attempt to import TensorFlow fails like a missing package and, when
GANLAB_TF_IMPORTS names a file, the file that asked (the first frame outside
the import machinery and ganlab's import guard) is appended to it, so a test
can tell who tried.
"""

import os
import sys
import traceback

_MACHINERY = ("importlib", "sitecustomize.py", "keras_import.py")


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            log = os.environ.get("GANLAB_TF_IMPORTS")
            if log:
                frames = [f for f in reversed(traceback.extract_stack()) if not any(m in f.filename for m in _MACHINERY)]
                asker = frames[0].filename if frames else "?"
                with open(log, "a") as f:
                    f.write(f"{os.getpid()}\t{name}\t{asker}\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())
