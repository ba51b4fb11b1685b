#!/usr/bin/env bash
# stage_mpi.sh DIR — Debian's Open MPI (openmpi-bin, libopenmpi3, libpmix2) as a relocatable
# tree in DIR/ompi.tar.xz, for machines that have no MPI (the lent GPU machines): mpirun
# and orted, the MCA components, help files, PMIx's plugins, and every shared library
# they and zmlx-mpi need beyond glibc / libstdc++ / zlib.  On the target:
#   tar xJf DIR/ompi.tar.xz -C /tmp && R=/tmp/ompi && . /tmp/ompi/env.sh
# (OPAL_PREFIX relocates Open MPI; PMIx's few plugins are optional and found or not at
# their Debian path).  Checked here by hiding /usr/lib/x86_64-linux-gnu/{openmpi,pmix2}
# and /usr/share/openmpi: `mpirun -n 2 zmlx-mpi ... --dry-run` still runs.
set -eu
DIR=${1:?usage: stage_mpi.sh DIR}
ZMPI=${ZMLX_MPI:-build/zmlx-mpi}
P=/usr/lib/x86_64-linux-gnu
W=$(mktemp -d)
R=$W/ompi
mkdir -p "$R/bin" "$R/libs" "$R/share" "$R/lib/x86_64-linux-gnu/openmpi/lib" "$R/lib/x86_64-linux-gnu/pmix2"
cp -L /usr/bin/orterun "$R/bin/mpirun"
cp -L /usr/bin/orted "$R/bin/"
cp -a "$P/openmpi/lib/openmpi3" "$R/lib/x86_64-linux-gnu/openmpi/lib/"
cp -L "$P"/openmpi/lib/*.so* "$R/lib/x86_64-linux-gnu/openmpi/lib/" 2>/dev/null || true
cp -a /usr/share/openmpi "$R/share/"
cp -a "$P/pmix2/lib" "$P/pmix2/share" "$R/lib/x86_64-linux-gnu/pmix2/"
for f in "$R"/bin/* "$ZMPI" "$R"/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/*.so "$R"/lib/x86_64-linux-gnu/openmpi/lib/*.so* \
    "$R"/lib/x86_64-linux-gnu/pmix2/lib/pmix/*.so; do
    ldd "$f" 2>/dev/null || true
done | awk '/=> \//{print $1, $3}' | sort -u |
    grep -vE "^(libc|libm|libstdc\+\+|libgcc_s|libdl|libpthread|librt|libz)\.so" |
    while read -r _ path; do cp -Ln "$path" "$R/libs/" 2>/dev/null || true; done
cat >"$R/env.sh" <<'ENV'
# . env.sh with R set to this tree: mpirun, Open MPI and PMIx from here
export OPAL_PREFIX="$R"
export PATH="$R/bin:$PATH"
export LD_LIBRARY_PATH="$R/libs:$R/lib/x86_64-linux-gnu/openmpi/lib:$R/lib/x86_64-linux-gnu/pmix2/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_mca_base_component_show_load_errors=0
export PMIX_MCA_pcompress_base_silence_warning=1 # PMIx's optional compression plugin, not carried
ENV
mkdir -p "$DIR"
tar cJf "$DIR/ompi.tar.xz" -C "$W" ompi
rm -rf "$W"
echo "$DIR/ompi.tar.xz: $(du -h "$DIR/ompi.tar.xz" | cut -f1)"
