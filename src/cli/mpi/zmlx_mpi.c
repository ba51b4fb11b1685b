/*
 * zmlx_mpi.c — `zmlx-mpi`, zmlx as one process per GPU under mpirun, so one command spans
 * the GPUs of several nodes:
 *
 *   mpirun -n 16 -npernode 8 zmlx-mpi generate MODEL --backend cuda --gpus 0-7 [...]
 *
 * Each rank takes the GPU of --gpus at its local rank (the processes of one node take
 * the node's GPUs in order) and checks it; rank 0 makes the NCCL unique id and MPI
 * broadcasts it; then every rank runs the zmlx command line (cli_main, the same code as
 * `zmlx`) with --gpus removed and ZMLX_DIST_WORLD / _RANK / _GPU / _ID set (read by the
 * CLI, cmd_dist.c).  The command runs in this process: NCCL's bootstrap root lives in
 * the process that made the id, rank 0, which must stay alive while the ranks connect.
 * Ranks other than 0 send stdout to /dev/null, so the output appears once; errors stay
 * on stderr.  MPI is finalized before the command: from there on NCCL carries all the
 * traffic.  `zmlx` itself never links MPI (it runs where no MPI is installed).
 *
 * Failures before the command are agreed on by every rank (an MPI all-reduce), so no rank
 * is left waiting for a peer that gave up: each failing rank prints its reason
 * ("rank 1 of 2 (host h): GPU 1: CUDA unavailable: ..."), and every rank exits 2.
 * --dry-run prints each rank's GPU, environment and command instead of running it (no
 * GPU is probed, the id is zeros).  A command without `--backend cuda` needs no GPU: it
 * is run without the GPU check and id (`dist plan` works; a model command fails as zmlx
 * does, --gpus being for the cuda backend).
 */
#include "cli/cli.h"
#include "dist/dist.h"
#include "zmlx.h"

#include <fcntl.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_FAIL 2

typedef struct launch {
    int rank, world, local, local_n;
    char host[MPI_MAX_PROCESSOR_NAME];
    zmlx_dist_params d; /* --gpus of this node */
    const char *gpus_arg;
    bool dry_run;
    bool cuda;          /* the command runs --backend cuda (else no GPU is checked) */
    char **args;        /* argv for cli_main: [zmlx, COMMAND, ...] without --gpus, --dry-run */
    int n_args;
} launch;

static void say(const launch *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const launch *l, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "zmlx-mpi: error: rank %d of %d (host %s): %s\n", l->rank, l->world,
            l->host, msg);
}

/* True when every rank's `ok` is true. */
static bool agree(bool ok) {
    int mine = ok ? 1 : 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all == 1;
}

static void usage(void) {
    fprintf(stderr,
            "usage: mpirun -n N [-npernode G] zmlx-mpi COMMAND [MODEL] --gpus LIST [--dry-run]\n"
            "                   [zmlx options]\n"
            "Runs `zmlx COMMAND ...` as one process per GPU (expert parallelism over NCCL).\n"
            "The processes of each node take that node's GPUs of --gpus in local-rank order,\n"
            "so start as many processes per node as --gpus lists.  --dry-run prints what\n"
            "each rank would run.\n");
}

/* argv minus --gpus LIST and --dry-run, "zmlx" first; false on a usage error. */
static bool parse(launch *l, int argc, char **argv) {
    l->args = calloc((size_t)argc + 1, sizeof *l->args);
    if (!l->args) return false;
    int n = 0;
    l->args[n++] = "zmlx";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--gpus")) {
            if (i + 1 >= argc) return false;
            l->gpus_arg = argv[++i];
        } else if (!strcmp(argv[i], "--dry-run")) {
            l->dry_run = true;
        } else {
            l->cuda |= i > 1 && !strcmp(argv[i - 1], "--backend") && !strcmp(argv[i], "cuda");
            l->args[n++] = argv[i];
        }
    }
    l->args[n] = NULL;
    l->n_args = n;
    return n > 1 && l->gpus_arg;
}

/* Every check before the command, agreed by all ranks. */
static bool checks(launch *l) {
    char err[ZMLX_ERR_MAX];
    bool ok = zmlx_dist_parse_gpus(l->gpus_arg, &l->d, err, sizeof err) == ZMLX_OK;
    if (!ok && l->rank == 0) fprintf(stderr, "zmlx-mpi: error: %s\n", err);
    if (!agree(ok)) return false;
    ok = l->local_n == l->d.n_gpus;
    if (!ok && l->local == 0)
        say(l, "this node runs %d processes but --gpus %s names %d GPU%s: start one process "
               "per listed GPU on every node (mpirun -npernode %d)",
            l->local_n, l->gpus_arg, l->d.n_gpus, l->d.n_gpus == 1 ? "" : "s", l->d.n_gpus);
    if (!agree(ok)) return false;
    if (l->dry_run || !l->cuda) return true; /* a command without --backend cuda needs no GPU */
    const int gpu = l->d.gpus[l->local];
    ok = zmlx_dist_check_gpu(gpu, err, sizeof err) == ZMLX_OK;
    if (!ok) say(l, "GPU %d: %s", gpu, err);
    return agree(ok);
}

/* Rank 0's NCCL id to everyone; false (reason printed by rank 0) if it could not be made. */
static bool share_id(launch *l, uint8_t id[ZMLX_DIST_ID_BYTES]) {
    int st = 0;
    memset(id, 0, ZMLX_DIST_ID_BYTES);
    if (l->rank == 0 && !l->dry_run && l->cuda) {
        char err[ZMLX_ERR_MAX];
        if (zmlx_dist_unique_id(id, err, sizeof err) != ZMLX_OK) {
            say(l, "%s", err);
            st = 1;
        }
    }
    MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (st) return false;
    MPI_Bcast(id, ZMLX_DIST_ID_BYTES, MPI_BYTE, 0, MPI_COMM_WORLD);
    return true;
}

int main(int argc, char **argv) {
    launch l = {0};
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &l.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &l.world);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, l.rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &l.local);
    MPI_Comm_size(node, &l.local_n);
    MPI_Comm_free(&node);
    int hl = 0;
    MPI_Get_processor_name(l.host, &hl);
    uint8_t id[ZMLX_DIST_ID_BYTES];
    const bool args_ok = parse(&l, argc, argv);
    if (!args_ok && l.rank == 0) usage();
    if (!agree(args_ok) || !checks(&l) || !share_id(&l, id)) {
        MPI_Finalize();
        return EXIT_FAIL;
    }
    char v[4][2 * ZMLX_DIST_ID_BYTES + 1];
    snprintf(v[0], sizeof v[0], "%d", l.world);
    snprintf(v[1], sizeof v[1], "%d", l.rank);
    snprintf(v[2], sizeof v[2], "%d", l.d.gpus[l.local]);
    zdist_id_to_hex(id, v[3]);
    static const char *const names[4] = {"ZMLX_DIST_WORLD", "ZMLX_DIST_RANK", "ZMLX_DIST_GPU",
                                         "ZMLX_DIST_ID"};
    for (int i = 0; i < 4; i++) setenv(names[i], v[i], 1);
    setenv("NCCL_NVLS_ENABLE", "0", 0); /* NVLink multicast stays off unless asked for */
    MPI_Finalize();
    if (l.dry_run) {
        printf("rank %d of %d (host %s, local %d of %d): GPU %s ZMLX_DIST_WORLD=%s "
               "ZMLX_DIST_RANK=%s run", l.rank, l.world, l.host, l.local, l.local_n, v[2], v[0],
               v[1]);
        for (char **a = l.args; *a; a++) printf(" %s", *a);
        printf("\n");
        return 0;
    }
    if (l.rank != 0) { /* one copy of the output: rank 0's */
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) dup2(fd, STDOUT_FILENO), close(fd);
    }
    return cli_main(l.n_args, l.args);
}
