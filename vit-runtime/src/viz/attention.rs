//! The attention grid: one row per image (its label, the image, then one heat map per
//! column setting), column headers, and a colour bar saying what the colours mean.
use super::base::{plot_error, register_font, PlotError};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One image of the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct GridRow {
    /// Lines written left of the row: where the image comes from, its true class...
    pub label: Vec<String>,
    /// The last label line (the prediction) is green when right, red when wrong.
    pub correct: bool,
    /// Pixels in `[0, 1]`, row-major, the grid's `size`.
    pub image: Vec<f32>,
    /// One map per column, in `[0, 1]`, the grid's `size`.
    pub maps: Vec<Vec<f32>>,
}

/// What [`plot_attention`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionGrid {
    pub title: String,
    /// Lines under the title: where the maps come from, how they were made.
    pub subtitle: Vec<String>,
    /// Two lines per map column.
    pub headers: Vec<[String; 2]>,
    pub rows: Vec<GridRow>,
    /// `(height, width)` of the images and maps.
    pub size: (usize, usize),
}

/// Screen pixels per image pixel: 28x28 images become 168x168 cells.
const SCALE: usize = 6;
const GAP: usize = 18;
const LABEL_WIDTH: usize = 170;
const BAR_HEIGHT: usize = 90;
/// Weight of the heat map over the grey image.
const ALPHA: f32 = 0.55;

/// Draws `grid` to a PNG at `path`.
pub fn plot_attention(path: &Path, grid: &AttentionGrid) -> Result<(), PlotError> {
    register_font();
    let err = |e: &dyn std::fmt::Display| plot_error(path, e);
    let (h, w) = grid.size;
    let (cell_w, cell_h) = (w * SCALE, h * SCALE);
    let columns = grid.headers.len() + 1;
    let width = LABEL_WIDTH + columns * (cell_w + GAP);
    // Title, subtitle lines, two header lines, then the rows.
    let header_y = 48 + 18 * grid.subtitle.len();
    let top = header_y + 52;
    let height = top + grid.rows.len() * (cell_h + GAP) + BAR_HEIGHT;
    let root = BitMapBackend::new(path, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;

    let centred = |size: u32| {
        ("sans-serif", size)
            .into_font()
            .into_text_style(&root)
            .pos(Pos::new(HPos::Center, VPos::Top))
    };
    let mid = (width / 2) as i32;
    text(&root, &grid.title, (mid, 10), centred(22)).map_err(|e| err(&e))?;
    for (i, line) in grid.subtitle.iter().enumerate() {
        text(&root, line, (mid, 40 + 18 * i as i32), centred(14)).map_err(|e| err(&e))?;
    }
    let column_x = |c: usize| (LABEL_WIDTH + c * (cell_w + GAP)) as i32;
    let headers = std::iter::once(["image".to_string(), "(test set)".to_string()])
        .chain(grid.headers.iter().cloned());
    for (c, lines) in headers.enumerate() {
        let x = column_x(c) + cell_w as i32 / 2;
        for (i, line) in lines.iter().enumerate() {
            text(&root, line, (x, (header_y + 18 * i) as i32), centred(14)).map_err(|e| err(&e))?;
        }
    }

    for (r, row) in grid.rows.iter().enumerate() {
        let y = (top + r * (cell_h + GAP)) as i32;
        let left = ("sans-serif", 15).into_font().into_text_style(&root);
        for (i, line) in row.label.iter().enumerate() {
            let last = i + 1 == row.label.len();
            let color = match (last, row.correct) {
                (false, _) => BLACK,
                (true, true) => RGBColor(0, 130, 0),
                (true, false) => RGBColor(200, 0, 0),
            };
            let style = left.clone().color(&color);
            text(&root, line, (10, y + 40 + 22 * i as i32), style).map_err(|e| err(&e))?;
        }
        draw_cell(&root, (column_x(0), y), grid.size, |i| grey(row.image[i]))
            .map_err(|e| err(&e))?;
        for (c, map) in row.maps.iter().enumerate() {
            draw_cell(&root, (column_x(c + 1), y), grid.size, |i| {
                blend(row.image[i], jet(map[i]))
            })
            .map_err(|e| err(&e))?;
        }
    }
    colour_bar(&root, (width, height)).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult<'a> =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

fn text<'a>(root: &Area<'a>, s: &str, at: (i32, i32), style: TextStyle) -> DrawResult<'a> {
    root.draw(&Text::new(s.to_string(), at, style))
}

/// One image-sized cell at `origin`, each image pixel a `SCALE x SCALE` square.
fn draw_cell<'a>(
    root: &Area<'a>,
    origin: (i32, i32),
    (h, w): (usize, usize),
    color: impl Fn(usize) -> RGBColor,
) -> DrawResult<'a> {
    let s = SCALE as i32;
    for y in 0..h {
        for x in 0..w {
            let (x0, y0) = (origin.0 + x as i32 * s, origin.1 + y as i32 * s);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + s, y0 + s)],
                color(y * w + x).filled(),
            ))?;
        }
    }
    Ok(())
}

/// A gradient from 0 to 1 under the grid, with what it measures.
fn colour_bar<'a>(root: &Area<'a>, (width, height): (usize, usize)) -> DrawResult<'a> {
    let (bar_w, bar_h) = (360i32, 16i32);
    let x0 = (width as i32 - bar_w) / 2;
    let y0 = height as i32 - BAR_HEIGHT as i32 + 20;
    for x in 0..bar_w {
        let v = x as f32 / (bar_w - 1) as f32;
        root.draw(&Rectangle::new(
            [(x0 + x, y0), (x0 + x + 1, y0 + bar_h)],
            jet(v).filled(),
        ))?;
    }
    let style = |h| {
        ("sans-serif", 14)
            .into_font()
            .into_text_style(root)
            .pos(Pos::new(h, VPos::Center))
    };
    text(root, "low", (x0 - 8, y0 + bar_h / 2), style(HPos::Right))?;
    text(
        root,
        "high",
        (x0 + bar_w + 8, y0 + bar_h / 2),
        style(HPos::Left),
    )?;
    let caption = "class-token attention to each patch, each map scaled to its own min..max, upsampled bilinearly";
    text(
        root,
        caption,
        (width as i32 / 2, y0 + bar_h + 18),
        style(HPos::Center),
    )
}

fn grey(v: f32) -> RGBColor {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(g, g, g)
}

/// The "jet" colour map (`cv2.COLORMAP_JET`, as vit-explain shows its masks): dark blue,
/// cyan, yellow, dark red.
pub fn jet(v: f32) -> RGBColor {
    let v = v.clamp(0.0, 1.0);
    let channel =
        |centre: f32| ((1.5 - (4.0 * v - centre).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(channel(3.0), channel(2.0), channel(1.0))
}

fn blend(image: f32, heat: RGBColor) -> RGBColor {
    let g = image.clamp(0.0, 1.0) * 255.0;
    let mix = |c: u8| ((1.0 - ALPHA) * g + ALPHA * f32::from(c)).round() as u8;
    RGBColor(mix(heat.0), mix(heat.1), mix(heat.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_from_dark_blue_through_green_to_dark_red() {
        assert_eq!(jet(0.0), RGBColor(0, 0, 128));
        assert_eq!(jet(0.5), RGBColor(128, 255, 128));
        assert_eq!(jet(1.0), RGBColor(128, 0, 0));
        assert_eq!(jet(7.0), jet(1.0), "values are clamped");
    }

    #[test]
    fn grid_renders_one_cell_per_column_and_row() {
        let size = (4, 4);
        let row = |correct| GridRow {
            label: vec!["test #0".into(), "true: Coat".into(), "pred: Coat".into()],
            correct,
            image: (0..16).map(|v| v as f32 / 15.0).collect(),
            maps: vec![vec![0.5; 16]; 2],
        };
        let grid = AttentionGrid {
            title: "t".into(),
            subtitle: vec!["s".into()],
            headers: vec![["a".into(), "b".into()], ["c".into(), "d".into()]],
            rows: vec![row(true), row(false)],
            size,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        plot_attention(&path, &grid).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap()) as usize;
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap()) as usize;
        assert_eq!(width, LABEL_WIDTH + 3 * (4 * SCALE + GAP));
        assert_eq!(height, 48 + 18 + 52 + 2 * (4 * SCALE + GAP) + BAR_HEIGHT);
    }
}
