#!/bin/bash
#:
#: name = "build"
#: variety = "basic"
#: target = "default"
#: output_rules = [
#:   "=/work/out/hello.txt",
#: ]
#:
set -o errexit
mkdir -p /work/out
echo "hello from bm" > /work/out/hello.txt
cat /work/out/hello.txt
