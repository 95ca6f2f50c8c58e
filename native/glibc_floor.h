// Binds the few glibc symbols whose default version is newer than 2.28 (Node 20's own floor) to
// their older versions, so that the addon built on a newer glibc loads on any glibc >= 2.28.
// test/ts/portable.test.ts checks the built file's needs with objdump.
#ifndef SPARK_DBN_GLIBC_FLOOR_H
#define SPARK_DBN_GLIBC_FLOOR_H
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_join,pthread_join@GLIBC_2.2.5");
__asm__(".symver pthread_detach,pthread_detach@GLIBC_2.2.5");
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@GLIBC_2.2.5");
#endif
