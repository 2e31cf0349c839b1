# Sourced by bench/run.sh and bench/pipeline/compare.sh: how the Python harnesses of parts
# 2 and 6 are started. Sets `harness` (a command prefix) and `rt` (1: the measured programs
# run under SCHED_FIFO, chrt -f 1).
#
# The harness only sleeps and reads counters: on CPU 0, at the highest nice. It is not
# under SCHED_FIFO itself: at FIFO 2 it spun in the kernel three times for 13-16 minutes
# (once with no program left to wait for), holding CPU 0 and ignoring SIGKILL until it was
# moved to SCHED_OTHER (bench/README.md, part 2, "How it is measured").
# shellcheck shell=bash disable=SC2034
harness=(nice -n -20 taskset -c 0)
rt=0
if [[ ${CORDON_BENCH_RT:-1} != 0 ]] && chrt -f 1 true 2>/dev/null; then
  rt=1
fi
