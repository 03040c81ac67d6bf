# expect: output_invalid
import numpy as np
outputs["x"] = np.array([object()], dtype=object)
