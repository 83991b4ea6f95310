// Inline SVG charts, no library: a line chart (several series over x) and a bar chart.

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
const MARGIN = { top: 22, right: 12, bottom: 30, left: 52 };

function svgEl(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function shortNumber(value) {
  if (Number.isInteger(value) && Math.abs(value) < 1e3) return String(value);
  const size = Math.abs(value);
  if (size >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (size >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  if (size >= 10) return value.toFixed(0);
  if (size >= 1) return value.toFixed(1);
  return value.toPrecision(2);
}

function frame(width, height, title) {
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart" });
  if (title) svg.append(svgEl("title", {}, title));
  return svg;
}

function axes(svg, { width, height, yMax, yMin = 0, xLabel, yLabel }) {
  const bottom = height - MARGIN.bottom;
  svg.append(svgEl("line", { x1: MARGIN.left, y1: bottom, x2: width - MARGIN.right, y2: bottom, class: "axis" }));
  svg.append(svgEl("line", { x1: MARGIN.left, y1: MARGIN.top, x2: MARGIN.left, y2: bottom, class: "axis" }));
  for (const fraction of [0, 0.5, 1]) {
    const y = bottom - fraction * (bottom - MARGIN.top);
    svg.append(svgEl("line", { x1: MARGIN.left, y1: y, x2: width - MARGIN.right, y2: y, class: "grid" }));
    svg.append(svgEl("text", { x: MARGIN.left - 4, y: y + 4, "text-anchor": "end", class: "tick" },
      shortNumber(yMin + fraction * (yMax - yMin))));
  }
  if (xLabel) svg.append(svgEl("text", { x: (MARGIN.left + width - MARGIN.right) / 2, y: height - 4, "text-anchor": "middle", class: "label" }, xLabel));
  if (yLabel) svg.append(svgEl("text", { x: 4, y: 10, class: "label" }, yLabel));
}

// series: [{name, points: [[x, y], ...]}]; nulls are skipped.
export function lineChart({ series, width = 560, height = 200, xLabel = "", yLabel = "", title = "" }) {
  const svg = frame(width, height, title);
  const points = series.flatMap((s) => s.points.filter(([, y]) => y !== null && y !== undefined && Number.isFinite(y)));
  if (!points.length) {
    svg.append(svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "label" }, "no data yet"));
    return svg;
  }
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const yMin = Math.min(0, ...ys);
  const yMax = Math.max(...ys) > yMin ? Math.max(...ys) * 1.05 : yMin + 1;
  axes(svg, { width, height, yMax, yMin, xLabel, yLabel });
  const scaleX = (x) => MARGIN.left + (xMax === xMin ? 0.5 : (x - xMin) / (xMax - xMin)) * (width - MARGIN.left - MARGIN.right);
  const scaleY = (y) => height - MARGIN.bottom - ((y - yMin) / (yMax - yMin)) * (height - MARGIN.top - MARGIN.bottom);
  svg.append(svgEl("text", { x: MARGIN.left, y: height - 14, class: "tick" }, shortNumber(xMin)));
  svg.append(svgEl("text", { x: width - MARGIN.right, y: height - 14, "text-anchor": "end", class: "tick" }, shortNumber(xMax)));
  series.forEach((s, i) => {
    const drawn = s.points.filter(([, y]) => y !== null && y !== undefined && Number.isFinite(y));
    if (!drawn.length) return;
    const colour = COLOURS[i % COLOURS.length];
    svg.append(svgEl("polyline", { points: drawn.map(([x, y]) => `${scaleX(x)},${scaleY(y)}`).join(" "), fill: "none",
      stroke: colour, "stroke-width": 2, class: "series", "data-series": s.name }));
    drawn.forEach(([x, y]) => svg.append(svgEl("circle", { cx: scaleX(x), cy: scaleY(y), r: 2.5, fill: colour },
    )));
    // legends in a row above the plot, so they never cover a line
    svg.append(svgEl("text", { x: MARGIN.left + 8 + 110 * i, y: 11, style: `fill: ${colour}`, class: "legend" }, `— ${s.name}`));
  });
  return svg;
}

// bars: [{label, value}]
export function barChart({ bars, width = 560, height = 200, xLabel = "", yLabel = "", title = "" }) {
  const svg = frame(width, height, title);
  const yMax = Math.max(1, ...bars.map((b) => b.value));
  axes(svg, { width, height, yMax, xLabel, yLabel });
  const slot = (width - MARGIN.left - MARGIN.right) / Math.max(1, bars.length);
  bars.forEach((bar, i) => {
    const barHeight = (bar.value / yMax) * (height - MARGIN.top - MARGIN.bottom);
    const x = MARGIN.left + i * slot;
    const rect = svgEl("rect", { x: x + 1, y: height - MARGIN.bottom - barHeight, width: Math.max(1, slot - 2), height: barHeight, class: "bar" });
    rect.append(svgEl("title", {}, `${bar.label}: ${bar.value}`));
    svg.append(rect);
    if (bars.length <= 16) {
      svg.append(svgEl("text", { x: x + slot / 2, y: height - MARGIN.bottom + 11, "text-anchor": "middle", class: "tick small" }, bar.label));
    }
  });
  return svg;
}
