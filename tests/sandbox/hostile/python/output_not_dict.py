# expect: output_invalid
def main(inputs):
    return [1, 2, 3]
