// A small C++11 RAII layer over libdisrnn's handles (header-only, not installed: an example of
// how a C++ program owns the C objects).
//
// - Config, Model, Dataset, Trainer own their handle through std::unique_ptr with the matching
//   disrnn_*_free as deleter: move-only, freed exactly once, also when an exception unwinds.
// - A failed call throws disrnn::Error carrying the status and the message the library left on
//   the handle.
// - Arrays are std::vector<double> in the library's layout (column-major; a trial of N channels
//   over T bins is bin-major, x[t * N + i]).
// - The progress callback is a std::function behind a trampoline that catches every exception
//   (C++ exceptions must not cross the C frames of disrnn_trainer_fit), aborts the fit, and
//   rethrows the exception once the C call has returned.
#ifndef DISRNN_EXAMPLE_HPP
#define DISRNN_EXAMPLE_HPP

#include <disrnn.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace disrnn {

/// A failed call: status() is the disrnn_status code, what() the library's message.
class Error : public std::runtime_error {
public:
    Error(int status, const std::string &message)
        : std::runtime_error(message.empty() ? std::string(disrnn_status_string(status)) : message),
          status_(status) {}
    int status() const { return status_; }

private:
    int status_;
};

namespace detail {
inline int check(int st, const char *handle_message)
{
    if (st < 0) throw Error(st, handle_message ? handle_message : "");
    return st;
}
struct ConfigFree { void operator()(disrnn_config_t *p) const { disrnn_config_free(p); } };
struct ModelFree { void operator()(disrnn_model_t *p) const { disrnn_model_free(p); } };
struct DatasetFree { void operator()(disrnn_dataset_t *p) const { disrnn_dataset_free(p); } };
struct TrainerFree { void operator()(disrnn_trainer_t *p) const { disrnn_trainer_free(p); } };
} // namespace detail

/// Model configuration.
class Config {
public:
    Config(std::size_t n_obs, std::size_t n_latent)
    {
        disrnn_config_t *raw = nullptr;
        detail::check(disrnn_config_create(&raw, n_obs, n_latent), "disrnn_config_create failed");
        p_.reset(raw);
    }
    Config &groups(const std::vector<std::size_t> &sizes)
    {
        check(disrnn_config_set_groups(get(), sizes.data(), sizes.size()));
        return *this;
    }
    Config &kernel(const std::vector<double> &psi)
    {
        check(disrnn_config_set_kernel(get(), psi.data(), psi.size()));
        return *this;
    }
    Config &set_int(int option, std::int64_t v)
    {
        check(disrnn_config_set_int(get(), option, v));
        return *this;
    }
    Config &set_double(int option, double v)
    {
        check(disrnn_config_set_double(get(), option, v));
        return *this;
    }
    Config &seed(std::uint64_t s)
    {
        check(disrnn_config_set_seed(get(), s));
        return *this;
    }
    disrnn_config_t *get() const { return p_.get(); }

private:
    void check(int st) const { detail::check(st, disrnn_config_last_error(get())); }
    std::unique_ptr<disrnn_config_t, detail::ConfigFree> p_;
};

class Dataset;

/// A DisRNN model.
class Model {
public:
    explicit Model(const Config &cfg)
    {
        disrnn_model_t *raw = nullptr;
        detail::check(disrnn_model_create(&raw, cfg.get()), disrnn_config_last_error(cfg.get()));
        p_.reset(raw);
    }
    static Model load(const std::string &path)
    {
        char msg[512] = "";
        disrnn_model_t *raw = nullptr;
        detail::check(disrnn_model_load(&raw, path.c_str(), msg, sizeof msg), msg);
        return Model(raw);
    }
    Model clone() const
    {
        disrnn_model_t *raw = nullptr;
        check(disrnn_model_clone(&raw, get()));
        return Model(raw);
    }
    void save(const std::string &path) const { check(disrnn_model_save(get(), path.c_str())); }

    std::size_t n_obs() const { return dims(0); }
    std::size_t n_latent() const { return dims(1); }
    std::size_t num_params() const { return disrnn_model_num_params(get()); }

    std::vector<double> params() const
    {
        std::vector<double> v(num_params());
        check(disrnn_model_get_params(get(), v.data(), v.size()));
        return v;
    }
    void set_params(const std::vector<double> &v) { check(disrnn_model_set_params(get(), v.data(), v.size())); }

    /// Posterior means, K x S column-major.
    inline std::vector<double> latents(const Dataset &ds) const;

    /// n_steps generated bins (N x T) and the latents used (K x T), no initial bins or inputs.
    std::pair<std::vector<double>, std::vector<double>> generate(std::size_t n_steps, int flags,
                                                                 std::uint64_t seed) const
    {
        const std::size_t n = n_obs(), k = n_latent();
        std::pair<std::vector<double>, std::vector<double>> out(std::vector<double>(n * n_steps),
                                                                std::vector<double>(k * n_steps));
        check(disrnn_model_generate(get(), 0, nullptr, n, n_steps, nullptr, 0, flags, seed, out.first.data(), n,
                                    out.second.data(), k));
        return out;
    }

    disrnn_model_t *get() const { return p_.get(); }
    std::string last_error() const { return disrnn_model_last_error(get()); }

private:
    explicit Model(disrnn_model_t *raw) : p_(raw) {}
    std::size_t dims(int which) const
    {
        std::size_t d[5] = {0, 0, 0, 0, 0};
        check(disrnn_model_dims(get(), &d[0], &d[1], &d[2], &d[3], &d[4]));
        return d[which];
    }
    void check(int st) const { detail::check(st, disrnn_model_last_error(get())); }
    std::unique_ptr<disrnn_model_t, detail::ModelFree> p_;
};

/// Trials of N channels.
class Dataset {
public:
    Dataset(std::size_t n_obs, std::size_t n_inputs = 0, int kind = DISRNN_DATA_CONTINUOUS)
        : n_obs_(n_obs), n_inputs_(n_inputs)
    {
        disrnn_dataset_t *raw = nullptr;
        detail::check(disrnn_dataset_create(&raw, n_obs, n_inputs, kind), "disrnn_dataset_create failed");
        p_.reset(raw);
    }
    /// Append a trial given as N x T bin-major values.
    void add_trial(const std::vector<double> &x)
    {
        if (n_obs_ == 0 || x.size() % n_obs_ != 0)
            throw Error(DISRNN_ERR_INVALID_ARG, "a trial must hold a whole number of bins of N values");
        check(disrnn_dataset_add_trial(get(), x.size() / n_obs_, x.data(), n_obs_, nullptr, n_inputs_, nullptr, n_obs_));
    }
    std::size_t num_trials() const { return disrnn_dataset_num_trials(get()); }
    std::size_t num_samples(const Model &m) const { return disrnn_dataset_num_samples(get(), m.get()); }
    std::size_t n_obs() const { return n_obs_; }
    disrnn_dataset_t *get() const { return p_.get(); }

private:
    void check(int st) const { detail::check(st, disrnn_dataset_last_error(get())); }
    std::size_t n_obs_, n_inputs_;
    std::unique_ptr<disrnn_dataset_t, detail::DatasetFree> p_;
};

inline std::vector<double> Model::latents(const Dataset &ds) const
{
    const std::size_t k = n_latent(), s = ds.num_samples(*this);
    std::vector<double> mu(k * s);
    check(disrnn_model_latents(get(), ds.get(), mu.data(), k, s));
    return mu;
}

/// What the progress callback sees after each epoch.
struct Progress {
    std::int64_t epoch, step;
    const double *terms;
    std::size_t n_terms;
    double val_loss, elapsed;
};

/// A trainer bound to a model and a dataset, which must outlive it (it keeps references).
class Trainer {
public:
    /// Return 0 to continue, positive to stop, negative to abort.
    using ProgressFn = std::function<int(const Progress &)>;

    Trainer(Model &model, const Dataset &train, std::uint64_t seed) : model_(&model)
    {
        disrnn_trainer_t *raw = nullptr;
        detail::check(disrnn_trainer_create(&raw, model.get(), train.get(), seed), disrnn_model_last_error(model.get()));
        p_.reset(raw);
    }
    Trainer &set_int(int option, std::int64_t v)
    {
        check(disrnn_trainer_set_int(get(), option, v));
        return *this;
    }
    Trainer &set_double(int option, double v)
    {
        check(disrnn_trainer_set_double(get(), option, v));
        return *this;
    }
    /// Train; returns DISRNN_OK, DISRNN_STOPPED or DISRNN_EARLY_STOPPED, throws on error or
    /// rethrows what the callback threw.
    int fit(ProgressFn fn = ProgressFn())
    {
        Slot slot;
        slot.fn = std::move(fn);
        check(disrnn_trainer_set_progress(get(), slot.fn ? &Trainer::trampoline : nullptr, &slot));
        const int st = disrnn_trainer_fit(get());
        disrnn_trainer_set_progress(get(), nullptr, nullptr);
        if (slot.error) std::rethrow_exception(slot.error);
        return check(st);
    }
    Model &model() { return *model_; }
    disrnn_trainer_t *get() const { return p_.get(); }

private:
    struct Slot {
        ProgressFn fn;
        std::exception_ptr error;
    };
    static int trampoline(std::int64_t epoch, std::int64_t step, const double *terms, std::size_t n_terms,
                          double val_loss, double elapsed, void *user_data)
    {
        Slot *slot = static_cast<Slot *>(user_data);
        try {
            const Progress p = {epoch, step, terms, n_terms, val_loss, elapsed};
            return slot->fn(p);
        } catch (...) {
            slot->error = std::current_exception();
            return -1;
        }
    }
    int check(int st) const { return detail::check(st, disrnn_trainer_last_error(get())); }
    Model *model_;
    std::unique_ptr<disrnn_trainer_t, detail::TrainerFree> p_;
};

/// Group-aligned latent R^2 of fitted latents (K_fit x n) against reference latents (K_ref x n).
inline double align_r2(const std::vector<double> &ref, const std::vector<std::size_t> &ref_groups,
                       const std::vector<double> &fit, const std::vector<std::size_t> &fit_groups)
{
    std::size_t k_ref = 0, k_fit = 0;
    for (std::size_t g : ref_groups) k_ref += g;
    for (std::size_t g : fit_groups) k_fit += g;
    if (k_ref == 0 || k_fit == 0 || ref.size() % k_ref || fit.size() % k_fit || ref.size() / k_ref != fit.size() / k_fit)
        throw Error(DISRNN_ERR_INVALID_ARG, "latents do not match their group sizes");
    double r2 = 0.0;
    detail::check(disrnn_align_r2(ref.size() / k_ref, ref.data(), k_ref, ref_groups.data(), ref_groups.size(),
                                  fit.data(), k_fit, fit_groups.data(), fit_groups.size(), &r2, nullptr, nullptr,
                                  nullptr, k_ref),
                  "disrnn_align_r2 failed");
    return r2;
}

} // namespace disrnn

#endif
