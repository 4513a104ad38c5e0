#!/bin/bash
#:
#: name = "test"
#: variety = "basic"
#: target = "ubuntu-22.04"
#: skip_clone = true
#: output_rules = [
#:   "/tmp/test-report.txt",
#: ]
#:
#: [dependencies.build]
#: job = "build"
#:
set -o errexit
set -o pipefail

banner test
cd /input/build/work/out
sha256sum -c hello.sha256.txt
mkdir -p /tmp/unpacked
tar -C /tmp/unpacked -xzf hello.tar.gz
grep -q "hello" /tmp/unpacked/greeting.txt
echo "pfexec gives uid $(pfexec id -u)"
echo "all good: $(cat /tmp/unpacked/greeting.txt)" | tee /tmp/test-report.txt
