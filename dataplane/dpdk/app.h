// Entry point of cordon-dataplane, kept in the DPDK shell so that nothing outside
// dataplane/dpdk includes EAL headers.
#pragma once

namespace cordon::dataplane {

// Runs the dataplane until SIGINT/SIGTERM. Returns the process exit status: non-zero with
// a message on stderr for bad arguments, missing ports or too little memory.
int run_dataplane(int argc, char** argv);

}  // namespace cordon::dataplane
