// Fit a DisRNN to synthetic data through the RAII wrappers of disrnn.hpp and print the
// group-aligned latent R^2 and a checksum of the fitted parameters. Same recipe and output as
// the C, Rust and Python versions (examples/downstream/README.md).
//
//   c++ -std=c++11 -Iexamples/cpp fit_example.cpp $(pkg-config --cflags --libs disrnn)
#include "disrnn.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace {

// FNV-1a (64-bit) over the little-endian bytes of each value's IEEE-754 bits.
std::uint64_t fnv1a64(const std::vector<double> &values)
{
    std::uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (double v : values) {
        std::uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        for (int b = 0; b < 8; b++) {
            h ^= (bits >> (8 * b)) & 0xffu;
            h *= UINT64_C(0x100000001b3);
        }
    }
    return h;
}

int run()
{
    const std::size_t N = 20, K = 4, TRIALS = 4, BINS = 250;
    const std::vector<std::size_t> groups = {2, 2};
    std::printf("fit_synthetic (C++): libdisrnn %s\n", disrnn_version_string());

    // Ground truth: a random DisRNN with two groups of two latents, latent noise s = 0.05.
    disrnn::Config truth_cfg(N, K);
    truth_cfg.groups(groups).set_int(DISRNN_OPT_STD_MODE, DISRNN_STD_FIXED).set_double(DISRNN_OPT_STD_VALUE, 0.05).seed(1);
    const disrnn::Model truth(truth_cfg);

    disrnn::Dataset data(N);
    std::vector<double> reference;
    for (std::size_t r = 0; r < TRIALS; r++) {
        auto xz = truth.generate(BINS, DISRNN_GEN_LATENT_NOISE | DISRNN_GEN_OBS_NOISE, 100 + r);
        data.add_trial(xz.first);
        reference.insert(reference.end(), xz.second.begin(), xz.second.end());
    }

    // The fitted model: same shape, its own seed, a PC penalty.
    disrnn::Config cfg(N, K);
    cfg.groups(groups).set_double(DISRNN_OPT_BETA, 1.0).seed(2);
    disrnn::Model model(cfg);

    double last_loss = NAN;
    {
        disrnn::Trainer tr(model, data, 3);
        tr.set_int(DISRNN_TRAIN_EPOCHS, 30).set_int(DISRNN_TRAIN_BATCH_SIZE, 100).set_double(DISRNN_TRAIN_LR, 0.02);
        tr.fit([&](const disrnn::Progress &p) {
            last_loss = p.terms[DISRNN_TERM_LOSS];
            return 0;
        });
    }

    const double r2 = disrnn::align_r2(reference, groups, model.latents(data), groups);
    const std::vector<double> params = model.params();
    std::printf("final loss: %.6f\n", last_loss);
    std::printf("group-aligned R^2: %.6f\n", r2);
    std::printf("parameter checksum: %016" PRIx64 " (%zu values)\n", fnv1a64(params), params.size());

    // The error path: a bad argument surfaces the library's message as an exception.
    try {
        disrnn::Config bad(N, K);
        bad.groups({3, 3});
        std::fprintf(stderr, "fit_example: bad group sizes were accepted\n");
        return 1;
    } catch (const disrnn::Error &e) {
        if (e.status() != DISRNN_ERR_INVALID_ARG || std::strlen(e.what()) == 0) return 1;
    }
    return 0;
}

} // namespace

int main()
{
    try {
        return run();
    } catch (const disrnn::Error &e) {
        std::fprintf(stderr, "fit_example: %s (%s)\n", e.what(), disrnn_status_string(e.status()));
        return 1;
    }
}
