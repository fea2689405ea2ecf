/* rwlock: readers share a pthread_rwlock_t, writers exclude everybody: four readers and
 * two writers loop 100 times checking the counts inside; two readers hold the lock at
 * the same time; tryrdlock/trywrlock answer EBUSY against a writer and trywrlock EBUSY
 * against a reader; a writer blocked behind readers gets in once they leave.
 * Pins: pthread_rwlock_rdlock(3p) / pthread_rwlock_wrlock(3p) /
 * pthread_rwlock_tryrdlock(3p) (EBUSY); nptl pthread_rwlock_common.c over FUTEX_WAIT/WAKE
 * on __readers and __writers_futex. */
#include "check.h"
#include <pthread.h>

enum { READERS = 4, WRITERS = 2, ROUNDS = 100 };

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static int readers_in, writers_in;
static long data;

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_rwlock_rdlock(&rw), 0);
        __atomic_add_fetch(&readers_in, 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(__atomic_load_n(&writers_in, __ATOMIC_SEQ_CST), 0);
        long d = data;
        if (i % 8 == 0)
            sched_yield();
        CHECK_EQ(data, d);
        __atomic_sub_fetch(&readers_in, 1, __ATOMIC_SEQ_CST);
        CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    }
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_RC(pthread_rwlock_wrlock(&rw), 0);
        CHECK_EQ(__atomic_add_fetch(&writers_in, 1, __ATOMIC_SEQ_CST), 1);
        CHECK_EQ(__atomic_load_n(&readers_in, __ATOMIC_SEQ_CST), 0);
        long d = data;
        if (i % 8 == 0)
            sched_yield();
        data = d + 1;
        __atomic_sub_fetch(&writers_in, 1, __ATOMIC_SEQ_CST);
        CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    }
    return NULL;
}

static int second_in;

static void *second_reader(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_rwlock_rdlock(&rw), 0);
    __atomic_store_n(&second_in, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&second_in, __ATOMIC_SEQ_CST) != 2)
        sched_yield();
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

static void *try_both(void *arg)
{
    (void)arg;
    int rd = pthread_rwlock_tryrdlock(&rw);
    if (rd == 0)
        CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    int wr = pthread_rwlock_trywrlock(&rw);
    if (wr == 0)
        CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return (void *)(intptr_t)(rd * 1000 + wr);
}

static int writer_done;

static void *blocked_writer(void *arg)
{
    (void)arg;
    CHECK_RC(pthread_rwlock_wrlock(&rw), 0);
    __atomic_store_n(&writer_done, 1, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    return NULL;
}

int main(void)
{
    pthread_t t[READERS + WRITERS];
    for (int i = 0; i < READERS; i++)
        CHECK_RC(pthread_create(&t[i], NULL, reader, NULL), 0);
    for (int i = 0; i < WRITERS; i++)
        CHECK_RC(pthread_create(&t[READERS + i], NULL, writer, NULL), 0);
    for (int i = 0; i < READERS + WRITERS; i++)
        CHECK_RC(pthread_join(t[i], NULL), 0);
    CHECK_EQ(data, WRITERS * ROUNDS);
    printf("writes: %ld\n", data);

    /* two readers inside at once */
    CHECK_RC(pthread_rwlock_rdlock(&rw), 0);
    CHECK_RC(pthread_create(&t[0], NULL, second_reader, NULL), 0);
    while (__atomic_load_n(&second_in, __ATOMIC_SEQ_CST) != 1)
        sched_yield();
    __atomic_store_n(&second_in, 2, __ATOMIC_SEQ_CST);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    CHECK_RC(pthread_join(t[0], NULL), 0);
    printf("two readers at once\n");

    void *res;
    CHECK_RC(pthread_rwlock_wrlock(&rw), 0);
    CHECK_RC(pthread_create(&t[0], NULL, try_both, NULL), 0);
    CHECK_RC(pthread_join(t[0], &res), 0);
    CHECK_EQ((intptr_t)res, EBUSY * 1000 + EBUSY);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    printf("write-held: tryrdlock EBUSY, trywrlock EBUSY\n");

    CHECK_RC(pthread_rwlock_rdlock(&rw), 0);
    CHECK_RC(pthread_create(&t[0], NULL, try_both, NULL), 0);
    CHECK_RC(pthread_join(t[0], &res), 0);
    CHECK_EQ((intptr_t)res, 0 * 1000 + EBUSY);
    /* a writer queues behind this reader and gets in when it leaves */
    CHECK_RC(pthread_create(&t[0], NULL, blocked_writer, NULL), 0);
    for (int i = 0; i < 20; i++)
        sched_yield();
    CHECK_EQ(__atomic_load_n(&writer_done, __ATOMIC_SEQ_CST), 0);
    CHECK_RC(pthread_rwlock_unlock(&rw), 0);
    CHECK_RC(pthread_join(t[0], NULL), 0);
    CHECK_EQ(writer_done, 1);
    printf("read-held: tryrdlock 0, trywrlock EBUSY, writer waits\n");
    return 0;
}
