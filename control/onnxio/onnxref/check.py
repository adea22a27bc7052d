# check.py MODEL.onnx...: runs Debian's onnx checker with full_check=True (strict shape
# inference included) on each model and prints onnx's version. Written by
# control/onnxio/onnxref; a failure exits non-zero with the checker's message last.
import sys

import onnx

for p in sys.argv[1:]:
    model = onnx.load(p)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # ValidationError, InferenceError
        sys.stderr.write("%s: %s: %s\n" % (p, type(e).__name__, str(e).replace("\n", " ")))
        sys.exit(1)
print(onnx.__version__)
