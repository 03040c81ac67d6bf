# expect: memory_limit
import numpy as np
x = np.ones((1 << 15, 1 << 15), dtype=np.float64)
