/* The FP32 peak of this CPU, measured: every thread runs independent fused multiply-adds
 * on the widest vectors the compiler targets (-march=native: AVX-512, AVX2 or SSE) for
 * about a second, and the program prints the sum of their GFLOP/s (one FMA = 2 FLOP).
 *
 * Spec sheets give the peak as cores x clock x FMA pipes x vector width x 2, but a virtual
 * machine hides its clock and the pipes differ by CPU generation; this loop is what the
 * cores actually sustain, the ceiling a gemm kernel can approach.
 *
 * Usage: cc -O2 -march=native -pthread bench/peak.c -o peak && ./peak [threads]
 * Prints one JSON line: {"threads": N, "vector_floats": W, "gflops": G}.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
#define WIDTH 16
#elif defined(__AVX__)
#define WIDTH 8
#else
#define WIDTH 4
#endif

typedef float vec __attribute__((vector_size(WIDTH * sizeof(float))));

/* Independent accumulators: enough to cover the FMA latency (4-5 cycles) on two pipes. */
#define CHAINS 12
#define ITERATIONS 500000000L

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *work(void *out) {
    vec acc[CHAINS];
    vec a, b;
    for (int i = 0; i < WIDTH; i++) {
        a[i] = 0.999999f;
        b[i] = 1e-7f;
    }
    for (int c = 0; c < CHAINS; c++) acc[c] = a * (float)c;
    double start = seconds();
    for (long n = 0; n < ITERATIONS; n++) {
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b; /* contracted to FMA */
    }
    double elapsed = seconds() - start;
    vec sum = acc[0];
    for (int c = 1; c < CHAINS; c++) sum += acc[c];
    double flops = 2.0 * WIDTH * CHAINS * (double)ITERATIONS;
    ((double *)out)[0] = flops / elapsed / 1e9;
    ((double *)out)[1] = sum[0]; /* the result is used, so the work is kept */
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "usage: %s [threads 1..1024]\n", argv[0]);
        return 2;
    }
    pthread_t *ids = malloc(sizeof(pthread_t) * threads);
    double(*results)[2] = malloc(sizeof(double[2]) * threads);
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, work, results[t]);
    double total = 0.0, guard = 0.0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        total += results[t][0];
        guard += results[t][1];
    }
    printf("{\"threads\": %d, \"vector_floats\": %d, \"gflops\": %.1f, \"guard\": %g}\n", threads,
           WIDTH, total, guard);
    free(ids);
    free(results);
    return 0;
}
