# git_commit.cmake — run at build time by the zmlx_git target (cmake -DSRC=... -DOUT=... -P):
# the source tree's commit, "+dirty" when tracked files differ from it, into the header OUT,
# rewritten only when that text changes, so a new commit rebuilds src/tools/sysinfo.c alone
# and a capsule never names a commit its binary was not built from.
execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY "${SRC}"
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
if(NOT rc EQUAL 0 OR NOT commit)
  set(commit unknown)
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY "${SRC}"
                  OUTPUT_VARIABLE changes RESULT_VARIABLE rc2 ERROR_QUIET)
  if(rc2 EQUAL 0 AND changes)
    set(commit "${commit}+dirty")
  endif()
endif()
set(text "/* generated at build time by cmake/git_commit.cmake */\n#define ZMLX_GIT_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
