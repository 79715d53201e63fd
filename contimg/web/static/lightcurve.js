// Drag across a light-curve plot to zoom to that MJD range (the page reloads with start_mjd and
// end_mjd, as the range form would); double-click to see every epoch again.
(function () {
  "use strict";

  function toPlot(svg, event) {
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
    return point.x;
  }

  function mjdAt(svg, x) {
    const d = svg.dataset;
    const x0 = Number(d.x0), x1 = Number(d.x1), lo = Number(d.lo), hi = Number(d.hi);
    const clamped = Math.min(Math.max(x, x0), x1);
    return lo + ((clamped - x0) / (x1 - x0)) * (hi - lo);
  }

  function go(range) {
    const url = new URL(window.location.href);
    if (range) {
      url.searchParams.set("start_mjd", range[0].toFixed(5));
      url.searchParams.set("end_mjd", range[1].toFixed(5));
    } else {
      url.searchParams.delete("start_mjd");
      url.searchParams.delete("end_mjd");
    }
    window.location.assign(url.toString());
  }

  function attach(svg) {
    const band = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    band.setAttribute("class", "zoom-band");
    band.setAttribute("y", "0");
    band.setAttribute("height", svg.viewBox.baseVal.height);
    band.setAttribute("width", "0");
    let start = null;
    svg.addEventListener("pointerdown", (event) => {
      start = toPlot(svg, event);
      band.setAttribute("x", start);
      band.setAttribute("width", "0");
      svg.appendChild(band);
      svg.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    svg.addEventListener("pointermove", (event) => {
      if (start === null) return;
      const x = toPlot(svg, event);
      band.setAttribute("x", Math.min(start, x));
      band.setAttribute("width", Math.abs(x - start));
    });
    svg.addEventListener("pointerup", (event) => {
      if (start === null) return;
      const end = toPlot(svg, event);
      const from = start;
      start = null;
      band.remove();
      if (Math.abs(end - from) < 4) return; // a click, not a drag
      const a = mjdAt(svg, from), b = mjdAt(svg, end);
      go([Math.min(a, b), Math.max(a, b)]);
    });
    svg.addEventListener("dblclick", () => go(null));
  }

  document.querySelectorAll('svg.chart[data-zoom="mjd"]').forEach(attach);
})();
