/* entry.c — the `zmlx` process entry; zmlx-mpi has its own (src/cli/mpi/zmlx_mpi.c). */
#include "cli/cli.h"

int main(int argc, char **argv) {
    return cli_main(argc, argv);
}
