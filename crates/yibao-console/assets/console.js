// 医保征缴管理台: the console's only script of our own (no inline script anywhere).
// Draws the charts whose data the server put in `data-chart` (the numbers are also in the
// table beside each chart), and keeps them sized with the window.
(function () {
  'use strict';

  function rateOption(d) {
    return {
      animation: false,
      grid: { left: 48, right: 40, top: 24, bottom: 72 },
      tooltip: { trigger: 'axis', valueFormatter: function (v) { return v + '%'; } },
      xAxis: { type: 'category', data: d.categories, axisLabel: { interval: 0, rotate: d.categories.length > 6 ? 30 : 0 } },
      yAxis: { type: 'value', max: 100, axisLabel: { formatter: '{value}%' } },
      series: [{
        name: '缴费率', type: 'bar', data: d.values.map(function (v) {
          var color = v >= d.good ? '#17803d' : (v >= d.warn ? '#d18a00' : '#b42318');
          return { value: v, itemStyle: { color: color } };
        }),
        markLine: {
          symbol: 'none', silent: true,
          data: [
            { yAxis: d.good, lineStyle: { color: '#17803d', type: 'dashed' }, label: { formatter: d.good + '%' } },
            { yAxis: d.warn, lineStyle: { color: '#d18a00', type: 'dashed' }, label: { formatter: d.warn + '%' } }
          ]
        }
      }]
    };
  }

  function dailyOption(d) {
    return {
      animation: false,
      grid: { left: 48, right: 16, top: 40, bottom: 40 },
      legend: { top: 4, type: 'scroll' },
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', data: d.categories },
      yAxis: { type: 'value', name: '笔数', minInterval: 1 },
      series: d.series.map(function (s) { return { name: s.name, type: 'bar', stack: 'all', data: s.data }; })
    };
  }

  function draw(root) {
    if (typeof echarts === 'undefined') { return; }
    var charts = [];
    root.querySelectorAll('[data-chart]').forEach(function (el) {
      var data;
      try { data = JSON.parse(el.getAttribute('data-chart')); } catch (e) { return; }
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: 'canvas' });
      chart.setOption(data.kind === 'rate' ? rateOption(data) : dailyOption(data));
      el.setAttribute('data-chart-drawn', 'true');
      charts.push(chart);
    });
    window.addEventListener('resize', function () { charts.forEach(function (c) { c.resize(); }); });
  }

  // A button marked data-print prints the page (the printable listing); no inline handler.
  document.addEventListener('click', function (e) {
    var target = e.target && e.target.closest ? e.target.closest('[data-print]') : null;
    if (target) { e.preventDefault(); window.print(); }
  });

  document.addEventListener('DOMContentLoaded', function () { draw(document); });
  document.addEventListener('htmx:afterSwap', function (e) { draw(e.target); });
})();
