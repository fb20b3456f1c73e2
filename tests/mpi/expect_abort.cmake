# Runs an MPI job that one rank aborts and passes only if the whole job ends by
# itself, with a non-zero status, with rank 1's fatal message, and without a
# waiting rank getting past its wait. A hang fails here (TIME_LIMIT) or in
# CTest (the test's TIMEOUT); a timeout is a failure in CTest whatever the
# test's other properties.
#
#   cmake -DMPIEXEC_ARGS="mpiexec -n 2 --oversubscribe" -DPROGRAM=... \
#         [-DPROGRAM_ARGS=...] -DTIME_LIMIT=45 -P expect_abort.cmake
separate_arguments(launch UNIX_COMMAND "${MPIEXEC_ARGS}")
separate_arguments(program_args UNIX_COMMAND "${PROGRAM_ARGS}")
string(TIMESTAMP start "%s")
execute_process(COMMAND ${launch} ${PROGRAM} ${program_args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT ${TIME_LIMIT})
string(TIMESTAMP end "%s")
math(EXPR elapsed "${end} - ${start}")
message("job status: ${rc} after ${elapsed} s\n--- stdout ---\n${out}--- stderr ---\n${err}---")

if(NOT rc MATCHES "^-?[0-9]+$")
  message(FATAL_ERROR "the job did not end by itself (${rc}): the aborting rank left the others waiting")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited 0: an aborted job must fail")
endif()
if(NOT err MATCHES "\\[r1\\] fatal: abort_program: rank 1 gives up")
  message(FATAL_ERROR "rank 1's message \"[r1] fatal: ...\" is missing from stderr")
endif()
if(out MATCHES "receive returned|barrier returned")
  message(FATAL_ERROR "a waiting rank got past its wait: the job was not taken down")
endif()
message("ok: the job was taken down with rank 1's message")
