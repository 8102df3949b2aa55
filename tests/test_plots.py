"""Plot helpers return labelled figures; widgets build live and degrade to a static figure."""

import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
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
