// The sky view: cursor RA/Dec from the image's WCS, and click-to-measure (computed on the server).
// The pixel mapping is science/sky_render.py's: see its module docstring.
(function () {
  "use strict";
  const D2R = Math.PI / 180;

  // Zenithal projections (SIN, TAN, ARC) with the native pole at LONPOLE: pixel (1-based) to RA/Dec.
  function pixToWorld(wcs, px, py) {
    const dx = px - wcs.crpix[0], dy = py - wcs.crpix[1];
    const x = (wcs.cd[0][0] * dx + wcs.cd[0][1] * dy) * D2R;
    const y = (wcs.cd[1][0] * dx + wcs.cd[1][1] * dy) * D2R;
    const r = Math.hypot(x, y);
    let theta;
    if (wcs.projection === "SIN") {
      if (r > 1) return null;
      theta = Math.acos(r);
    } else if (wcs.projection === "TAN") {
      theta = Math.atan2(1, r);
    } else if (wcs.projection === "ARC") {
      theta = Math.PI / 2 - r;
    } else {
      return null;
    }
    const phi = Math.atan2(x, -y);
    const a0 = wcs.crval[0] * D2R, d0 = wcs.crval[1] * D2R, phiP = wcs.lonpole * D2R;
    const sinT = Math.sin(theta), cosT = Math.cos(theta), dphi = phi - phiP;
    const dec = Math.asin(sinT * Math.sin(d0) + cosT * Math.cos(d0) * Math.cos(dphi));
    const ra = a0 + Math.atan2(-cosT * Math.sin(dphi), sinT * Math.cos(d0) - cosT * Math.sin(d0) * Math.cos(dphi));
    return [((ra / D2R) % 360 + 360) % 360, dec / D2R];
  }

  function sexagesimal(deg, hours) {
    const sign = deg < 0 ? "-" : hours ? "" : "+";
    let v = Math.abs(hours ? deg / 15 : deg);
    const a = Math.floor(v); v = (v - a) * 60;
    const b = Math.floor(v); const c = (v - b) * 60;
    const pad = (n, w) => String(n).padStart(w, "0");
    return sign + pad(a, 2) + ":" + pad(b, 2) + ":" + c.toFixed(hours ? 2 : 1).padStart(hours ? 5 : 4, "0");
  }

  function fmt(v, scale, digits) {
    return v === null || v === undefined ? "–" : (v * scale).toFixed(digits);
  }

  function init() {
    const viewer = document.getElementById("viewer");
    if (!viewer) return;
    const img = document.getElementById("sky");
    const readout = document.getElementById("cursor");
    const panel = document.getElementById("measure");
    const saveButton = document.getElementById("save-measure");
    const status = document.getElementById("save-status");
    const mark = document.getElementById("click-mark");
    const api = viewer.dataset.api;
    const x0 = parseFloat(viewer.dataset.x0), y0 = parseFloat(viewer.dataset.y0);
    const scale = parseFloat(viewer.dataset.scale), height = parseFloat(viewer.dataset.height);
    let wcs = null, last = null;

    fetch(api + "/wcs").then((r) => r.json()).then((w) => { wcs = w; });

    // Output pixel (CSS pixels scaled to the PNG's own size) to zero-based image pixel (u, v).
    function imagePixel(event) {
      const box = img.getBoundingClientRect();
      const col = (event.clientX - box.left) * (img.naturalWidth || box.width) / box.width;
      const row = (event.clientY - box.top) * (img.naturalHeight || box.height) / box.height;
      return [x0 - 0.5 + col / scale, y0 - 0.5 + (height - row) / scale, col, row];
    }

    viewer.addEventListener("mousemove", (event) => {
      const [u, v] = imagePixel(event);
      const world = wcs ? pixToWorld(wcs, u + 1, v + 1) : null;
      readout.textContent = "x " + u.toFixed(1) + ", y " + v.toFixed(1) +
        (world ? " · RA " + sexagesimal(world[0], true) + " Dec " + sexagesimal(world[1], false) +
          " (" + world[0].toFixed(5) + "°, " + world[1].toFixed(5) + "°)" : "");
      readout.dataset.ra = world ? world[0] : "";
      readout.dataset.dec = world ? world[1] : "";
    });

    viewer.addEventListener("click", (event) => {
      const [u, v, col, row] = imagePixel(event);
      mark.innerHTML = "";
      const ring = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      ring.setAttribute("cx", col); ring.setAttribute("cy", row); ring.setAttribute("r", 9);
      ring.setAttribute("class", "ov-click");
      mark.appendChild(ring);
      panel.textContent = "measuring…";
      fetch(api + "/measure", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ x: u, y: v }),
      }).then((r) => r.json().then((body) => ({ ok: r.ok, body: body }))).then(({ ok, body }) => {
        if (!ok) { panel.textContent = "error: " + (body.detail || "failed"); return; }
        last = { x: u, y: v };
        panel.innerHTML = "";
        const rows = [
          ["RA, Dec", body.ra_deg.toFixed(5) + "°, " + body.dec_deg.toFixed(5) + "°"],
          ["peak", fmt(body.peak_jy, 1e3, 3) + " ± " + fmt(body.peak_err_jy, 1e3, 3) + " mJy/beam"],
          ["integrated", fmt(body.flux_jy, 1e3, 3) + " ± " + fmt(body.flux_err_jy, 1e3, 3) + " mJy"],
          ["local noise", fmt(body.local_rms_jy, 1e3, 3) + " mJy/beam"],
          ["SNR", fmt(body.snr, 1, 1)],
          ["flags", (body.flags || []).join(", ") || "none"],
        ];
        const dl = document.createElement("dl");
        dl.className = "facts";
        dl.id = "measured";
        dl.dataset.fluxJy = body.flux_jy;
        dl.dataset.peakJy = body.peak_jy;
        for (const [k, val] of rows) {
          const dt = document.createElement("dt"); dt.textContent = k;
          const dd = document.createElement("dd"); dd.textContent = val;
          dl.append(dt, dd);
        }
        panel.appendChild(dl);
        saveButton.hidden = viewer.dataset.operator !== "yes" || viewer.dataset.save !== "yes";
        status.textContent = "";
      });
    });

    saveButton.addEventListener("click", () => {
      if (!last) return;
      fetch(api + "/measurements", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": viewer.dataset.csrf },
        body: JSON.stringify(last),
      }).then((r) => r.json().then((body) => ({ ok: r.ok, body: body }))).then(({ ok, body }) => {
        status.textContent = ok ? "saved as measurement " + body.id : "not saved: " + (body.detail || "error");
      });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
