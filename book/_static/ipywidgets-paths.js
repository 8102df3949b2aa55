// Loaded between the vendored require.js and embed-amd.js (_config.yml: nb_ipywidgets_js).
// The ipywidgets HTML manager finds its icon fonts next to the URL RequireJS gives its module; without a
// path for it, that URL is relative to the page (book/@jupyter-widgets/...) and the fonts are not found.
(function () {
  var dir = document.currentScript.src.replace(/[?#].*$/, "").replace(/[^/]*$/, "") + "ipywidgets";
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": dir } });
})();
