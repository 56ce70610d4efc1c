/* edgegen from C: the structural guard and the classifier on camera frames.
 *
 * Opens the bundled Fashion-MNIST models (compiled .egm files linked in as C arrays), opens
 * the guard calibrated into the PixelCNN's file, and for each frame prints the guard's
 * verdict and the classifier's label (only when the guard accepts), with the exact bits of
 * every number so a host can check them; then draws one image from the VAE, and shows what
 * a corrupt model file gets. Frames come from IDX files read through stdio: semihosting
 * under QEMU, the file system on a host; on a board they would come from the camera.
 *
 * The same source builds for QEMU's mps2-an386 (Cortex-M4F) and for the host (Makefile). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "edgegen.h"
#include "models.h"
#include "platform.h"

#ifndef FRAMES_PER_SET
#define FRAMES_PER_SET 4
#endif
#define FRAME_BYTES 784

/* RAM, all of it static: the guard's arena and one for the other calls. */
#define GUARD_ARENA_BYTES (160u * 1024u)
#define ARENA_BYTES (64u * 1024u)
static uint8_t guard_arena[GUARD_ARENA_BYTES];
static uint8_t arena[ARENA_BYTES];
static uint8_t frame[FRAME_BYTES];
static uint8_t corrupt[16384];

static edgegen_model pixelcnn, background, vae, classifier;
static edgegen_guard guard;

static const struct {
    const char *name;
    const char *path;
} sets[] = {
    {"fashion-mnist", "models/frames/fashion-mnist-test.idx"},
    {"mnist", "models/frames/mnist-digits.idx"},
    {"sensor-faults", "models/frames/sensor-faults.idx"},
};

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

#define CHECK(call)                                                                                        \
    do {                                                                                                   \
        edgegen_status s_ = (call);                                                                        \
        if (s_ != EDGEGEN_OK) {                                                                            \
            printf("error %s: %s: %s\n", #call, edgegen_status_name(s_), edgegen_status_message(s_));   \
            return 1;                                                                                      \
        }                                                                                                  \
    } while (0)

static uint32_t f32_bits(float v) {
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* A double's bits as 16 hex digits (two halves: newlib-nano prints no long long). */
static void print_f64_bits(double v) {
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    printf("0x%08lx%08lx", (unsigned long)(b >> 32), (unsigned long)(b & 0xFFFFFFFFu));
}

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads frame `index` of an IDX file of 28x28 images into `frame`; the frame count into *count. */
static int read_frame(const char *path, uint32_t index, uint32_t *count) {
    uint8_t header[16];
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("error: cannot open %s (run from the repository's root)\n", path);
        return -1;
    }
    int ok = fread(header, 1, sizeof header, f) == sizeof header && be32(header) == 0x803 &&
             be32(header + 8) == 28 && be32(header + 12) == 28 && index < be32(header + 4) &&
             fseek(f, (long)(16 + index * FRAME_BYTES), SEEK_SET) == 0 &&
             fread(frame, 1, FRAME_BYTES, f) == FRAME_BYTES;
    fclose(f);
    if (!ok) {
        printf("error: %s is not an IDX file of 28x28 frames with frame %lu\n", path, (unsigned long)index);
        return -1;
    }
    *count = be32(header + 4);
    return 0;
}

int main(void) {
    platform_init();
    printf("edgegen-c version=%s counter=%s\n", edgegen_version(), platform_counter);

    CHECK(edgegen_model_open(&pixelcnn, pixelcnn_egm, pixelcnn_egm_len));
    CHECK(edgegen_model_open(&background, background_egm, background_egm_len));
    CHECK(edgegen_vae_open(&vae, vae_encoder_egm, vae_encoder_egm_len, vae_decoder_egm, vae_decoder_egm_len));
    CHECK(edgegen_model_open(&classifier, classifier_egm, classifier_egm_len));
    edgegen_info info, vae_info, classifier_info;
    CHECK(edgegen_model_info(&pixelcnn, &info));
    CHECK(edgegen_model_info(&vae, &vae_info));
    CHECK(edgegen_model_info(&classifier, &classifier_info));
    size_t need = 0;
    CHECK(edgegen_guard_arena_size(&pixelcnn, &background, &vae, &need));
    printf("models pixelcnn=%s geometry=%lux%lux%lu guard_arena=%lu classifier_arena=%lu vae_arena=%lu\n", info.name,
           (unsigned long)info.channels, (unsigned long)info.height, (unsigned long)info.width, (unsigned long)need,
           (unsigned long)classifier_info.arena_size, (unsigned long)vae_info.arena_size);
    if (need > sizeof guard_arena || classifier_info.arena_size > sizeof arena || vae_info.arena_size > sizeof arena ||
        info.image_size != FRAME_BYTES) {
        printf("error: the models need more arena than this example reserves\n");
        return 1;
    }
    CHECK(edgegen_guard_open(&guard, &pixelcnn, &background, &vae, guard_arena, need));

    unsigned accepted = 0, frames = 0;
    for (unsigned s = 0; s < sizeof sets / sizeof sets[0]; s++) {
        uint32_t count = FRAMES_PER_SET;
        for (uint32_t i = 0, index = 0; i < FRAMES_PER_SET; i++) {
            if (read_frame(sets[s].path, index, &count) != 0) return 1;
            edgegen_verdict v;
            edgegen_class c;
            uint64_t t0 = platform_instructions();
            CHECK(edgegen_guard_check(&guard, frame, FRAME_BYTES, &v));
            uint64_t t1 = platform_instructions();
            CHECK(edgegen_classify(&classifier, arena, sizeof arena, frame, FRAME_BYTES, &c));
            uint64_t t2 = platform_instructions();
            int label = v.accept ? (int)c.class_index : -1;
            printf("frame set=%s index=%lu bpd=%.4f bpd_bits=", sets[s].name, (unsigned long)index, v.bits_per_dim);
            print_f64_bits(v.bits_per_dim);
            printf(" score=%.4f score_bits=0x%08lx threshold=%.4f verdict=%s class=%lu probability_bits=", (double)v.score,
                   (unsigned long)f32_bits(v.score), (double)v.threshold, v.accept ? "accept" : "reject",
                   (unsigned long)c.class_index);
            print_f64_bits(c.probability);
            printf(" label=%s guard_instructions=%lu classifier_instructions=%lu\n",
                   label >= 0 ? class_names[label] : "none", (unsigned long)(t1 - t0), (unsigned long)(t2 - t1));
            accepted += v.accept;
            frames++;
            index += count / FRAMES_PER_SET; /* spread over the file: its frames differ in kind */
        }
    }
    printf("guard accepted=%u of=%u\n", accepted, frames);

    /* One call, three answers: the guard's verdict and the label only an accepted frame gets. */
    if (read_frame(sets[0].path, 0, &(uint32_t){0}) != 0) return 1;
    edgegen_answer a;
    CHECK(edgegen_guard_classify(&guard, &classifier, frame, FRAME_BYTES, &a));
    printf("answer set=%s index=0 score_bits=0x%08lx class=%lu label=%ld\n", sets[0].name,
           (unsigned long)f32_bits(a.verdict.score), (unsigned long)a.class_index, (long)a.label);

    /* Generation: one image from the VAE, the same on every target for the same seed. */
    uint64_t t0 = platform_instructions();
    CHECK(edgegen_sample(&vae, 1, arena, sizeof arena, frame, FRAME_BYTES));
    uint64_t t1 = platform_instructions();
    printf("sample model=vae seed=1 instructions=%lu pixels=", (unsigned long)(t1 - t0));
    for (unsigned i = 0; i < FRAME_BYTES; i++) printf("%02x", frame[i]);
    printf("\n");

    /* A corrupt model file is an error code, not a crash. */
    if (background_egm_len <= sizeof corrupt) {
        memcpy(corrupt, background_egm, background_egm_len);
        corrupt[background_egm_len / 2] ^= 0x10;
        edgegen_model m;
        edgegen_status st = edgegen_model_open(&m, corrupt, background_egm_len);
        printf("corrupt-model status=%s\n", edgegen_status_name(st));
        if (st != EDGEGEN_ERR_CHECKSUM) return 1;
    }
    printf("done\n");
    return 0;
}
