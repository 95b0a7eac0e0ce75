"""Tests of the Python bindings: error paths carry the library's message, shapes, array forms,
a short fit (learning and reproducibility), callbacks, and handle lifetimes.

Run with and without numpy:  python3 -m unittest discover -s bindings/python/tests
                             DISRNN_PY_NO_NUMPY=1 python3 -m unittest discover -s bindings/python/tests
"""
import array
import gc
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import disrnn  # noqa: E402

N, K = 8, 4


def flat(a):
    """Any result (numpy array or array('d')) as a flat list of floats."""
    return [float(v) for v in (a.ravel() if hasattr(a, "ravel") else a)]


def make_data(n_trials=2, bins=60):
    truth = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=11, std_mode=disrnn.STD_FIXED, std_value=0.2))
    ds = disrnn.Dataset(N)
    trials = []
    for r in range(n_trials):
        x, _ = truth.generate(bins, flags=disrnn.GEN_LATENT_NOISE | disrnn.GEN_OBS_NOISE, seed=7 + r)
        ds.add_trial(x)
        trials.append(flat(x))
    truth.close()
    return ds, trials


class Errors(unittest.TestCase):
    def test_bad_argument_surfaces_the_library_message(self):
        cfg = disrnn.Config(N, K)
        with self.assertRaises(disrnn.DisrnnError) as cm:
            cfg.set_groups([3, 3])
        e = cm.exception
        self.assertEqual(e.status, disrnn.ERR_INVALID_ARG)
        self.assertTrue(e.message)
        self.assertNotEqual(e.message, disrnn.status_string(disrnn.ERR_INVALID_ARG))
        self.assertEqual(e.message, cfg.last_error())
        self.assertIn(e.message, str(e))
        # The failed call changed nothing: the configuration still works.
        cfg.set_groups([1, 3])
        m = disrnn.Model(cfg)
        self.assertEqual(m.groups(), [1, 3])

    def test_errors_of_each_handle(self):
        with self.assertRaises(disrnn.DisrnnError) as cm:
            disrnn.Config(0, K)
        self.assertEqual(cm.exception.status, disrnn.ERR_INVALID_ARG)

        ds = disrnn.Dataset(2, 0, disrnn.DATA_COUNTS)
        with self.assertRaises(disrnn.DisrnnError) as cm:
            ds.add_trial([[1, -1], [2, 0]])
        self.assertEqual(cm.exception.status, disrnn.ERR_DATA)
        self.assertEqual(cm.exception.message, ds.last_error())
        self.assertEqual(ds.num_trials(), 0)
        ds.add_trial([[1, 0], [2, 3]])
        self.assertEqual((ds.num_trials(), ds.trial_length(0)), (1, 2))

        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2]))
        with self.assertRaises(disrnn.DisrnnError) as cm:
            m.set_params([0.0] * 3)
        self.assertEqual(cm.exception.status, disrnn.ERR_INVALID_ARG)
        self.assertEqual(cm.exception.message, m.last_error())
        with self.assertRaises(disrnn.DisrnnError) as cm:
            m.set_double(disrnn.OPT_BETA, float("nan"))
        self.assertEqual(cm.exception.status, disrnn.ERR_INVALID_ARG)

        # Rows of the wrong width are refused before reaching C.
        with self.assertRaises(disrnn.DisrnnError):
            disrnn.Dataset(3).add_trial([[1.0, 2.0], [3.0, 4.0]])
        with self.assertRaises(disrnn.DisrnnError):
            disrnn.Config(N, K, not_an_option=1)

        bad = disrnn.Model.from_bytes
        with self.assertRaises(disrnn.DisrnnError) as cm:
            bad(b"not a model file at all")
        self.assertIn(cm.exception.status, (disrnn.ERR_CORRUPT, disrnn.ERR_INVALID_ARG, disrnn.ERR_VERSION))
        self.assertTrue(cm.exception.message)

    def test_closed_handles(self):
        m = disrnn.Model(disrnn.Config(N, K))
        m.close()
        m.close()  # idempotent
        with self.assertRaises(disrnn.DisrnnError) as cm:
            m.dims()
        self.assertEqual(cm.exception.status, disrnn.ERR_BAD_STATE)


class Shapes(unittest.TestCase):
    def test_shapes_and_blocks(self):
        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=1))
        self.assertEqual(tuple(m.dims()), (N, K, 2, 1, 0))
        learned = 0
        for b in range(8):
            info = m.block_info(b)
            if info.learned:
                self.assertIsNotNone(info.offset)
                learned += info.rows * info.cols
        self.assertEqual(learned, m.num_params())
        self.assertEqual(len(flat(m.params())), m.num_params())
        a = m.param(disrnn.BLOCK_A)
        self.assertEqual(len(flat(a)), N * K)
        if disrnn.HAVE_NUMPY:
            self.assertEqual(a.shape, (K, N))  # column-major N x K seen as C-order (K, N)

        ds, _ = make_data()
        s = ds.num_samples(m)
        self.assertEqual(s, 120)
        mu = m.latents(ds)
        self.assertEqual(len(flat(mu)), K * s)
        if disrnn.HAVE_NUMPY:
            self.assertEqual(mu.shape, (s, K))
        tr, b = ds.sample_index(m)
        self.assertEqual((tr[0], b[0], tr[-1], b[-1]), (0, 0, 1, 59))
        self.assertEqual(len(flat(m.predict(ds))), N * s)
        self.assertEqual(len(flat(m.connectivity(disrnn.CONN_W))), N * N)

    def test_array_forms_are_equivalent(self):
        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=1))
        _, trials = make_data(1)
        x = trials[0]
        rows = [x[t * N:(t + 1) * N] for t in range(len(x) // N)]
        forms = [x, rows, array.array("d", x), memoryview(array.array("d", x))]
        if disrnn.HAVE_NUMPY:
            import numpy as np
            forms.append(np.array(rows))
            forms.append(np.asfortranarray(np.array(rows)))  # copied to C order
        results = []
        for f in forms:
            ds = disrnn.Dataset(N)
            ds.add_trial(f)
            results.append(flat(m.latents(ds)))
        for r in results[1:]:
            self.assertEqual(r, results[0])

    def test_bytes_and_file_roundtrip_and_clone(self):
        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=4))
        b = m.to_bytes()
        self.assertEqual(flat(disrnn.Model.from_bytes(b).params()), flat(m.params()))
        self.assertEqual(flat(m.clone().params()), flat(m.params()))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.disrnn")
            m.save(path)
            self.assertEqual(flat(disrnn.Model.load(path).params()), flat(m.params()))
            with self.assertRaises(disrnn.DisrnnError) as cm:
                disrnn.Model.load(os.path.join(d, "missing.disrnn"))
            self.assertEqual(cm.exception.status, disrnn.ERR_IO)
            self.assertTrue(cm.exception.message)


def short_fit(seed):
    ds, _ = make_data()
    m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=seed))
    losses = []
    with disrnn.Trainer(m, ds, seed=5, epochs=15, batch_size=40, lr=0.02) as tr:
        st = tr.fit(lambda p: losses.append(p.terms[disrnn.TERM_LOSS]))
        steps, epochs = tr.progress()
    return st, flat(m.params()), losses, steps, epochs


class Fit(unittest.TestCase):
    def test_short_fit_learns_and_is_reproducible(self):
        st, p1, l1, steps, epochs = short_fit(2)
        self.assertEqual(st, disrnn.OK)
        self.assertEqual((steps, epochs), (45, 15))
        self.assertEqual(len(l1), 15)
        self.assertLess(l1[-1], l1[0])
        _, p2, l2, _, _ = short_fit(2)
        self.assertEqual(p1, p2)
        self.assertEqual(l1, l2)

    def test_callbacks(self):
        ds, _ = make_data()
        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=3))
        tr = disrnn.Trainer(m, ds, seed=1, epochs=10)
        calls = []
        self.assertEqual(tr.fit(lambda p: calls.append(p.epoch) or 1), disrnn.STOPPED)
        self.assertEqual(len(calls), 1)

        def boom(p):
            raise ValueError("boom in callback")
        with self.assertRaises(ValueError):
            tr.fit(boom)
        with self.assertRaises(disrnn.DisrnnError) as cm:
            tr.fit(lambda p: -1)
        self.assertEqual(cm.exception.status, disrnn.ERR_CALLBACK)
        # Still usable, with a persistent callback.
        seen = []
        tr.set_progress(lambda p: seen.append(p))
        _, done = tr.progress()
        self.assertEqual(done, 3)  # stopped, raised and aborted after one epoch each
        tr.set_int(disrnn.TRAIN_EPOCHS, done + 2)  # epochs count from the trainer's epoch
        self.assertEqual(tr.fit(), disrnn.OK)
        self.assertEqual([p.epoch for p in seen], [done + 1, done + 2])
        self.assertEqual(len(seen[0].terms), 5)
        tr.close()

    def test_log_callback(self):
        m = disrnn.Model(disrnn.Config(N, K))
        got = []
        m.set_log(lambda lvl, msg: got.append((lvl, msg)))
        with self.assertRaises(disrnn.DisrnnError) as cm:
            m.set_double(disrnn.OPT_BETA, -1.0)
        self.assertIn((disrnn.LOG_ERROR, cm.exception.message), got)

        def bad(lvl, msg):
            raise RuntimeError("logger failure")
        m.set_log(bad)
        with self.assertRaises(disrnn.DisrnnError):
            m.set_double(disrnn.OPT_BETA, -1.0)
        m.set_log(None)

    def test_trainer_keeps_model_and_data_alive(self):
        ds, _ = make_data()
        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=3))
        tr = disrnn.Trainer(m, ds, seed=1, epochs=2)
        with self.assertRaises(disrnn.DisrnnError) as cm:
            m.close()
        self.assertEqual(cm.exception.status, disrnn.ERR_BAD_STATE)
        with self.assertRaises(disrnn.DisrnnError):
            ds.close()
        del m, ds
        gc.collect()
        self.assertEqual(tr.fit(), disrnn.OK)  # the trainer's references kept both alive
        tr.close()
        tr.model.close()
        tr.train.close()


class Analysis(unittest.TestCase):
    def test_align_r2_of_identical_latents_is_one(self):
        ds, _ = make_data()
        m = disrnn.Model(disrnn.Config(N, K, groups=[2, 2], seed=1))
        mu = m.latents(ds)
        al = disrnn.align_r2(mu, [2, 2], mu, [2, 2])
        self.assertAlmostEqual(al.r2, 1.0, places=9)
        self.assertEqual(sorted(al.assignment), [0, 1])

    def test_assignment_and_compare(self):
        # weight (2 x 3, column-major): best is row 0 -> col 2, row 1 -> col 0.
        w = [1.0, 5.0, 0.0, 1.0, 9.0, 0.0]
        a, total = disrnn.assignment_max(2, w)
        self.assertEqual(a, [2, 0])
        self.assertEqual(total, 14.0)
        corr, rmse, r2, mae = disrnn.compare_matrices([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
        self.assertAlmostEqual(corr, 1.0)
        self.assertEqual((rmse, mae), (0.0, 0.0))


if __name__ == "__main__":
    unittest.main()
