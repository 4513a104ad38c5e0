#!/bin/bash
#:
#: name = "build"
#: variety = "basic"
#: target = "ubuntu-22.04"
#: output_rules = [
#:   "=/work/out/hello.tar.gz",
#:   "=/work/out/hello.sha256.txt",
#:   "%/tmp/build-*.log",
#:   "!/tmp/build-noise.log",
#: ]
#:
#: [[publish]]
#: from_output = "/work/out/hello.tar.gz"
#: series = "hello"
#: name = "hello.tar.gz"
#:
set -o errexit
set -o pipefail

banner build
echo "building $GITHUB_REPOSITORY at $GITHUB_SHA as $(id -un) in $PWD"
ls
mkdir -p /work/out /tmp/stage
cp greeting.txt /tmp/stage/
echo "built by job $BUILDOMAT_JOB_ID" > /tmp/stage/provenance.txt
tar -C /tmp/stage -czf /work/out/hello.tar.gz .
(cd /work/out && sha256sum hello.tar.gz > hello.sha256.txt)
echo "compile log" > /tmp/build-main.log
echo "nobody wants this" > /tmp/build-noise.log
ptime -m tar -tzf /work/out/hello.tar.gz
