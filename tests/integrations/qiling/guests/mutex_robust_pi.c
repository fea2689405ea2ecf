/* mutex_robust_pi: mutex_robust.c's scenarios on a robust PTHREAD_PRIO_INHERIT mutex:
 * the owner's death goes through FUTEX_LOCK_PI's owner-died handling (the kernel's
 * exit_pi_state_list / handle_futex_death with pi=1: the waiter takes the lock with
 * FUTEX_OWNER_DIED set and glibc answers EOWNERDEAD).
 * Pins: pthread_mutexattr_setrobust(3p) + pthread_mutexattr_setprotocol(3p);
 * futex(2) FUTEX_LOCK_PI ("FUTEX_OWNER_DIED"). */
#define ROBUST_PI 1
#include "mutex_robust.c"
