// cordon-dataplane: forwards frames between each device port and its network port and
// enforces the policy through cordon_engine (DESIGN.md §1).
#include "dataplane/dpdk/app.h"

int main(int argc, char** argv) {
  return cordon::dataplane::run_dataplane(argc, argv);
}
