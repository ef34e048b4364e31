//! Hand-written SVG charts rendered from the raw results: grouped bars and lines.

const W: f64 = 760.0;
const H: f64 = 380.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 90.0;
const COLORS: &[&str] = &[
    "#3b6ea8", "#e07b39", "#5aa05a", "#c44e52", "#8172b2", "#937860",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum (1, 2, 2.5 or 5 times a power of ten) at or above `v`.
pub fn nice_max(v: f64) -> f64 {
    if !(v.is_finite()) || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn frame(title: &str, y_label: &str, y_max: f64) -> String {
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"22\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n",
        W / 2.0,
        esc(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 5.0;
        s += &format!(
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    s += &format!(
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>\n",
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        esc(y_label)
    );
    s
}

pub fn fmt_num(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn legend(names: &[&str]) -> String {
    let mut s = String::new();
    for (i, n) in names.iter().enumerate() {
        let x = LEFT + 150.0 * i as f64;
        let y = H - 14.0;
        s += &format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\">{}</text>\n",
            y - 9.0,
            COLORS[i % COLORS.len()],
            x + 14.0,
            esc(n)
        );
    }
    s
}

/// Grouped bars: one group per category, one bar per series (None: no bar).
pub fn bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(&str, Vec<Option<f64>>)],
) -> String {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let y_max = nice_max(max);
    let mut s = frame(title, y_label, y_max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    for (ci, cat) in categories.iter().enumerate() {
        let gx = LEFT + group_w * ci as f64 + group_w * 0.1;
        for (si, (_, vals)) in series.iter().enumerate() {
            if let Some(Some(v)) = vals.get(ci) {
                let h = plot_h * (v / y_max).clamp(0.0, 1.0);
                let x = gx + bar_w * si as f64;
                s += &format!(
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}</title></rect>\n",
                    TOP + plot_h - h,
                    (bar_w - 2.0).max(1.0),
                    COLORS[si % COLORS.len()],
                    fmt_num(*v)
                );
                if series.len() <= 3 {
                    s += &format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"9\">{}</text>\n",
                        x + bar_w / 2.0,
                        TOP + plot_h - h - 3.0,
                        fmt_num(*v)
                    );
                }
            }
        }
        let cx = LEFT + group_w * (ci as f64 + 0.5);
        let cy = TOP + plot_h + 14.0;
        s += &format!(
            "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"end\" transform=\"rotate(-20 {cx:.1} {cy:.1})\">{}</text>\n",
            esc(cat)
        );
    }
    let names: Vec<&str> = series.iter().map(|(n, _)| *n).collect();
    s += &legend(&names);
    s + "</svg>\n"
}

/// Lines over a shared numeric x axis.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> String {
    let pts = || series.iter().flat_map(|(_, v)| v.iter());
    let x_max = nice_max(pts().fold(0.0f64, |a, p| a.max(p.0)));
    let y_max = nice_max(pts().fold(0.0f64, |a, p| a.max(p.1)));
    let mut s = frame(title, y_label, y_max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            LEFT + plot_w * f64::from(i) / 5.0,
            TOP + plot_h + 14.0,
            fmt_num(v)
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
        LEFT + plot_w / 2.0,
        TOP + plot_h + 32.0,
        esc(x_label)
    );
    for (si, (_, v)) in series.iter().enumerate() {
        let d: Vec<String> = v
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + plot_w * (x / x_max).clamp(0.0, 1.0),
                    TOP + plot_h - plot_h * (y / y_max).clamp(0.0, 1.0)
                )
            })
            .collect();
        s += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            COLORS[si % COLORS.len()],
            d.join(" ")
        );
    }
    let names: Vec<&str> = series.iter().map(|(n, _)| *n).collect();
    s += &legend(&names);
    s + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_max_rounds_up() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(2100.0), 2500.0);
        assert_eq!(nice_max(500.0), 500.0);
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let b = bars(
            "t <x>",
            "req/s",
            &["a".into(), "b".into()],
            &[
                ("s1", vec![Some(1.0), None]),
                ("s2", vec![Some(2.0), Some(3.0)]),
            ],
        );
        assert!(b.starts_with("<svg") && b.trim_end().ends_with("</svg>"));
        assert!(b.contains("t &lt;x&gt;"));
        assert_eq!(
            b.matches("<rect x=").count(),
            3 + 2,
            "three bars and two legend keys"
        );
        let l = lines("l", "s", "ms", &[("a", vec![(0.0, 1.0), (1.0, 2.0)])]);
        assert!(l.contains("<polyline") && l.trim_end().ends_with("</svg>"));
    }
}
