# expect: output_too_large
# constraints: max_output_bytes=1048576
import numpy as np
outputs["x"] = np.zeros(4 << 20, dtype=np.uint8)
