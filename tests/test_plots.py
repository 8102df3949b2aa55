"""Plot helpers return labelled figures; widgets build live and degrade to a static figure."""

import copy
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import vaecourse as vc  # noqa: E402


@pytest.fixture(scope="module")
def model_and_data():
    vc.set_seed(0)
    d = vc.load_digits()
    model = vc.VAE(64, 2, hidden=(32,))
    return model, d


@pytest.mark.parametrize("dtypes", ["as loaded", "float64 model", "float64 data"])
def test_plots_return_figures(model_and_data, dtypes):
    model, d = model_and_data
    if dtypes == "float64 model":  # a model made .double(), shown float32 data
        model = copy.deepcopy(model).double()  # .double() is in place; the fixture is shared
    elif dtypes == "float64 data":  # data that came through numpy as float64
        d = d._replace(x_test=d.x_test.double())
    figs = [
        vc.plot_reconstructions(model, d.x_test, n=6),
        vc.plot_samples(model, n=12, ncols=6),
        vc.plot_latent_scatter(model, d.x_test, d.y_test),
        vc.plot_traversal(model, n=5),
        vc.plot_interpolation(model, d.x_test[0], d.x_test[1], steps=5),
        vc.plot_history({"a": {"epoch": [1, 2], "loss": [3, 2], "recon": [-2, -1], "kl": [1, 1]}}),
        vc.show_images(d.x_test[:7], ncols=4, title="digits"),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        assert fig.axes and (fig.axes[0].get_title() or fig._suptitle)
    scatter_ax = figs[2].axes[0]
    assert scatter_ax.get_xlabel() and scatter_ax.get_ylabel()
    plt.close("all")


def test_show_images_rejects_non_square_images():
    with pytest.raises(ValueError, match="square number of pixels"):
        vc.show_images(torch.rand(3, 10))


def test_widgets_live_and_static(model_and_data):
    import ipywidgets

    model, _ = model_and_data
    w = vc.latent_explorer(model)
    assert isinstance(w, ipywidgets.Widget)
    assert isinstance(vc.latent_explorer(model, static=True), matplotlib.figure.Figure)
    double = copy.deepcopy(model).double()  # a float64 model: the sliders' codes follow its dtype
    assert isinstance(vc.latent_explorer(double, static=True), matplotlib.figure.Figure)
    live = vc.latent_explorer(double)  # drawn once as it is built
    live.children[0].children[0].value = 1.0  # and again when a slider moves
    assert isinstance(live, ipywidgets.Widget)
    results = {0.5: 1, 2.0: 2}
    draw = lambda k, v: plt.figure()
    assert isinstance(vc.value_explorer(results, draw), ipywidgets.Widget)
    assert len(vc.value_explorer(results, draw, static=True)) == 2
    plt.close("all")


# ----------------------------------------------------------------------------- argument checks


@pytest.fixture(scope="module")
def small():
    """Unconditional and conditional 4x4-image models (D = 16, Z = 3), data in [0, 1], a one-hot label."""
    vc.set_seed(0)
    x = torch.rand(6, 16)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0, 1]), 4).float()
    return vc.VAE(16, 3, hidden=(8,)), vc.VAE(16, 3, hidden=(8,), cond_dim=4), x, y


def _pixels(fig):
    """The grey levels a one-image figure shows (the array handed to imshow)."""
    arr = fig.axes[0].images[0].get_array()
    plt.close(fig)
    return arr


def test_conditional_models_need_y_and_use_it(small):
    _, cond, x, y = small
    labels = torch.arange(6)
    calls = {
        "scatter": lambda **kw: vc.plot_latent_scatter(cond, x, labels, **kw),
        "traversal": lambda **kw: vc.plot_traversal(cond, n=3, **kw),
        "interpolation": lambda **kw: vc.plot_interpolation(cond, x[0], x[1], steps=3, **kw),
        "explorer": lambda **kw: vc.latent_explorer(cond, static=True, **kw),
        "samples": lambda **kw: vc.plot_samples(cond, n=3, **kw),
        "reconstructions": lambda **kw: vc.plot_reconstructions(cond, x, n=3, **kw),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"conditional model \(cond_dim=4\): pass y="):
            call()
        assert isinstance(call(y=y[2]), matplotlib.figure.Figure), name  # one label for every image
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        vc.plot_traversal(cond, n=3, y=y)
    # the label reaches the decoder: the traversal is the decoded grid under that label
    grid = torch.linspace(-2.5, 2.5, 3)
    z = torch.zeros(9, 3)
    z[:, 0], z[:, 1] = grid.repeat(3), grid.flip(0).repeat_interleave(3)
    with torch.no_grad():
        want, other = cond.decode_mean(z, y[2]), cond.decode_mean(z, y[0])
    got = _pixels(vc.plot_traversal(cond, n=3, y=y[2]))
    assert np.allclose(got, _pixels(vc.show_images(want, ncols=3)))
    assert not np.allclose(got, _pixels(vc.show_images(other, ncols=3)))
    # per-example labels in the scatter: the points are the posterior means given each example's label
    fig = vc.plot_latent_scatter(cond, x, labels, y=y, dims=(2, 0))
    with torch.no_grad():
        mu, _ = cond.encode(x, y)
    assert np.allclose(fig.axes[0].collections[0].get_offsets(), mu[:, [2, 0]].numpy(), atol=1e-6)
    plt.close("all")


def test_unconditional_models_reject_y(small):
    model, _, x, y = small
    with pytest.raises(ValueError, match="not conditional"):
        vc.plot_traversal(model, n=3, y=y[0])


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x: vc.plot_reconstructions(m, x),
        lambda m, x: vc.plot_samples(m, n=3),
        lambda m, x: vc.plot_latent_scatter(m, x, torch.zeros(len(x))),
        lambda m, x: vc.plot_traversal(m, n=3),
        lambda m, x: vc.plot_interpolation(m, x[0], x[1]),
        lambda m, x: vc.latent_explorer(m, static=True),
        lambda m, x: vc.active_units(m, x),
    ],
)
def test_a_model_argument_that_is_not_a_model_is_named(small, call):
    x = small[2]
    for wrong, name in ((torch.nn.Linear(x.shape[1], 2), "Linear"), ("vae", "str")):  # was: AttributeError
        with pytest.raises(TypeError, match=f"model must be a vc.VAE or vc.LinearGaussianVAE .*got {name}$"):
            call(wrong, x)
    plt.close("all")


def test_plot_interpolation_draws_both_ends(small):
    model, x = small[0], small[2]
    for steps in (1, 0, 2.5):
        with pytest.raises(ValueError, match="steps must be an integer >= 2"):
            vc.plot_interpolation(model, x[0], x[1], steps=steps)
    ends = _pixels(vc.plot_interpolation(model, x[0], x[1], steps=2))
    assert not np.array_equal(ends, _pixels(vc.plot_interpolation(model, x[0], x[0], steps=2)))  # t = 1 is x_b
    plt.close("all")


def test_plot_reconstructions_names_the_shape_it_was_given(small):
    model, x = small[0], small[2]
    for bad in (x[0], x[:3].reshape(3, 2, -1)):  # one unbatched image; images not flattened
        with pytest.raises(
            ValueError, match=rf"x must have shape \(N, {x.shape[1]}\) .*got " + re.escape(str(tuple(bad.shape)))
        ):
            vc.plot_reconstructions(model, bad)  # was: the shape of bad[:10]
    plt.close("all")


def test_show_images_reads_integer_pixels_and_rejects_far_out_floats(small):
    x = small[2]
    u8 = (x * 255).round().to(torch.uint8)
    assert np.allclose(_pixels(vc.show_images(u8, ncols=3)), _pixels(vc.show_images(x, ncols=3)), atol=0.5 / 255)
    assert np.array_equal(_pixels(vc.show_images(x > 0.5)), _pixels(vc.show_images((x > 0.5).float())))
    assert np.array_equal(_pixels(vc.show_images((x > 0.5).long())), _pixels(vc.show_images((x > 0.5).float())))
    vc.show_images(x * 1.4 - 0.2)  # a Gaussian decoder's means: a little outside [0, 1], clipped
    with pytest.raises(ValueError, match=r"grey levels in \[0, 1\].*images / 255"):
        vc.show_images(x * 255)
    with pytest.raises(ValueError, match="0..255"):
        vc.show_images(torch.full((1, 16), 300))
    with pytest.raises(ValueError, match="ncols must be an integer >= 1, got 2.5"):
        vc.show_images(x, ncols=2.5)
    plt.close("all")


def test_plot_reconstructions_checks_n_and_takes_arrays(small):
    model, _, x, _ = small
    for n in (-1, 0, 2.0, True):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            vc.plot_reconstructions(model, x, n=n)
    assert _pixels(vc.plot_reconstructions(model, x[:4], n=10)).shape == (9, 19)  # n > batch: all 4 images
    want = _pixels(vc.plot_reconstructions(model, x, n=3))
    assert np.array_equal(_pixels(vc.plot_reconstructions(model, x.numpy(), n=3)), want)
    assert np.array_equal(_pixels(vc.plot_reconstructions(model, x.tolist(), n=3)), want)
    with pytest.raises(TypeError, match="x must be a tensor or an array of numbers"):
        vc.plot_reconstructions(model, "images")
    with pytest.raises(ValueError, match=r"x must have shape \(N, 16\)"):
        vc.plot_reconstructions(model, torch.rand(3, 12))


def test_arrays_are_accepted_everywhere(small):
    model, _, x, _ = small
    labels = np.arange(6)
    a = vc.plot_latent_scatter(model, x.numpy(), labels).axes[0].collections[0].get_offsets()
    b = vc.plot_latent_scatter(model, x, torch.as_tensor(labels)).axes[0].collections[0].get_offsets()
    assert np.array_equal(a, b)
    want = _pixels(vc.plot_interpolation(model, x[0], x[1], steps=4))
    assert np.array_equal(_pixels(vc.plot_interpolation(model, x[0].numpy(), x[1].tolist(), steps=4)), want)
    assert np.array_equal(_pixels(vc.plot_interpolation(model, x[:1], x[1:2], steps=4)), want)  # (1, D) too
    with pytest.raises(ValueError, match=r"labels must have one entry per example"):
        vc.plot_latent_scatter(model, x, labels[:5])
    plt.close("all")


def test_interpolation_takes_two_single_examples(small):
    model, _, x, _ = small
    with pytest.raises(ValueError, match=r"x_a must be one example of 16 values, e.g. shape \(16,\), got \(2, 16\)"):
        vc.plot_interpolation(model, x[:2], x[2:4])
    with pytest.raises(ValueError, match="x_b must be one example"):
        vc.plot_interpolation(model, x[0], x)
    want = _pixels(vc.plot_interpolation(model, x[0], x[1], steps=4))
    assert np.array_equal(_pixels(vc.plot_interpolation(model, x[0].reshape(4, 4), x[1:2], steps=4)), want)  # images
    plt.close("all")


def test_ranges_are_checked(small):
    model = small[0]
    for extent in (0, -1.0, float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="extent must be a finite number > 0"):
            vc.plot_traversal(model, n=3, extent=extent)
        with pytest.raises(ValueError, match="extent must be a finite number > 0"):
            vc.latent_explorer(model, extent=extent, static=True)
    for step in (0, -0.1, 7.0, float("nan")):  # a slider step in (0, 2 * extent]
        with pytest.raises(ValueError, match=r"step must be a finite number in \(0, 6\]"):
            vc.latent_explorer(model, extent=3.0, step=step)
    plt.close(vc.latent_explorer(model, extent=1e-3, step=2e-3, static=True))


def test_latent_dims_are_checked(small):
    model, _, x, _ = small
    one = vc.VAE(16, 1, hidden=(8,))
    for call in (lambda: vc.plot_latent_scatter(one, x, torch.arange(6)), lambda: vc.plot_traversal(one, n=3)):
        with pytest.raises(ValueError, match="needs two latent dimensions but the model has z_dim=1"):
            call()
    for dims in ((0, 3), (-4, 0), (1, 1), (2, -1), (0,), 2):
        with pytest.raises(ValueError, match=r"dims must .*latent dimensions in 0..2 \(z_dim=3\)"):
            vc.plot_latent_scatter(model, x, torch.arange(6), dims=dims)
        with pytest.raises(ValueError, match=r"dims must .*z_dim=3"):
            vc.plot_traversal(model, n=3, dims=dims)
    for dims in ([3], [0, 0], []):
        with pytest.raises(ValueError, match=r"dims must .*z_dim=3"):
            vc.latent_explorer(model, dims=dims, static=True)
    assert isinstance(vc.latent_explorer(one, static=True), matplotlib.figure.Figure)  # Z = 1: one row
    # negative dimensions count from the end, as Python indices do
    assert np.array_equal(
        _pixels(vc.plot_traversal(model, n=3, dims=(-1, 0))), _pixels(vc.plot_traversal(model, n=3, dims=(2, 0)))
    )
    labels = torch.arange(6)
    a = vc.plot_latent_scatter(model, x, labels[:, None], dims=(-1, 0)).axes[0].collections[0].get_offsets()
    b = vc.plot_latent_scatter(model, x, labels, dims=(2, 0)).axes[0].collections[0].get_offsets()  # (N,) labels
    assert np.array_equal(np.asarray(a), np.asarray(b))
    plt.close("all")


def test_show_images_names_nan_and_infinite_pixels():
    for bad in (float("nan"), float("inf")):
        images = torch.rand(2, 16)
        images[1, 3] = bad
        with pytest.raises(ValueError, match="images contain NaN or infinite values"):
            vc.show_images(images)


def test_plot_history_arguments():
    h = {"epoch": [1, 2], "loss": [3, 2], "recon": [-2, -1], "kl": [1, 1]}
    fig = vc.plot_history(h, keys="loss")  # one key as a string
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "loss (negative objective)"
    with pytest.raises(TypeError, match=r"\{name: history\}"):
        vc.plot_history([h, h])
    with pytest.raises(ValueError, match="keys must name at least one"):
        vc.plot_history(h, keys=())
    with pytest.raises(ValueError, match=r"histories\['b'\] has no 'kl' entry"):
        vc.plot_history({"a": h, "b": {"epoch": [1], "loss": [1], "recon": [1]}})
    with pytest.raises(ValueError, match=r"histories\['a'\] must be a history dict"):
        vc.plot_history({"a": [1, 2]})
    plt.close("all")


def test_value_explorer_needs_a_dict():
    with pytest.raises(TypeError, match=r"results must be a dict \{value: result\}"):
        vc.value_explorer([1, 2], lambda k, v: plt.figure(), static=True)
    with pytest.raises(TypeError, match="draw must be a function"):
        vc.value_explorer({1: 1}, None, static=True)
