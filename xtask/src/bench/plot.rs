//! A dependency-free SVG line plot on log-log axes: snapshot latency against socket count.
//! Small enough to write by hand; a plotting crate would pull in font rendering for a
//! handful of lines.

use std::fmt::Write as _;

pub struct Series {
    pub label: String,
    pub color: &'static str,
    /// (x, y) points, both > 0 (log axes).
    pub points: Vec<(f64, f64)>,
}

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 55.0;

/// Decades spanning [lo, hi] (at least one decade).
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let a = lo.log10().floor() as i32;
    let b = hi.log10().ceil() as i32;
    (a, b.max(a + 1))
}

fn tick_label(v: f64, unit: &str) -> String {
    if v >= 1e6 {
        format!("{}M{unit}", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k{unit}", v / 1e3)
    } else if v >= 1.0 {
        format!("{v}{unit}")
    } else {
        format!("{v:.2}{unit}").trim_end_matches('0').to_string()
    }
}

/// Renders the series; `None` when there is nothing to plot.
pub fn svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Option<String> {
    let pts = series.iter().flat_map(|s| s.points.iter()).filter(|(x, y)| *x > 0.0 && *y > 0.0);
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    if xmin > xmax {
        return None;
    }
    let (xa, xb) = decades(xmin, xmax);
    let (ya, yb) = decades(ymin, ymax);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + (x.log10() - f64::from(xa)) / f64::from(xb - xa) * pw;
    let py = |y: f64| TOP + ph - (y.log10() - f64::from(ya)) / f64::from(yb - ya) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        LEFT + pw / 2.0,
        esc(title)
    );
    // Grid and ticks: a line per decade, light lines at 2x and 5x.
    for d in xa..=xb {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(d);
            if d == xb && m > 1.0 {
                continue;
            }
            let x = px(v);
            let stroke = if m == 1.0 { "#bbb" } else { "#eee" };
            let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="{stroke}"/>"#, TOP + ph);
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + ph + 16.0,
                tick_label(v, "")
            );
        }
    }
    for d in ya..=yb {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(d);
            if d == yb && m > 1.0 {
                continue;
            }
            let y = py(v);
            let stroke = if m == 1.0 { "#bbb" } else { "#eee" };
            let _ =
                writeln!(s, r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{stroke}"/>"#, LEFT + pw);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                tick_label(v, "")
            );
        }
    }
    let _ = writeln!(s, r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 12.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0,
        esc(y_label)
    );
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<String> = ser
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0)
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            ser.color,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{}"/>"#, ser.color);
        }
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + pw + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/>"#,
            lx + 22.0,
            ser.color
        );
        let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, lx + 28.0, ly + 4.0, esc(&ser.label));
    }
    s.push_str("</svg>\n");
    Some(s)
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_points_inside_the_frame() {
        let s = svg(
            "t",
            "x",
            "y",
            &[Series { label: "a<b".into(), color: "red", points: vec![(1000.0, 2.0), (100_000.0, 50.0)] }],
        )
        .expect("an svg");
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains("a&lt;b"));
        assert_eq!(s.matches("<circle").count(), 2);
        assert!(svg("t", "x", "y", &[]).is_none());
    }
}
