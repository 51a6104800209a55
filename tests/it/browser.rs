//! Headless Chromium (Debian's `chromium`; `.ci/run` installs it), for tests that look at a
//! page as a person would: the DOM after loading, and screenshots whose pixels are read back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{skip, temp_dir};
use crate::operate::find_in_path;

/// A browser that does not finish within this is stuck (it takes about a second here).
const BROWSER_LIMIT: Duration = Duration::from_secs(60);

/// A tool on PATH, or `None` after `harness::skip` said the test skipped (a failure in CI,
/// which must run everything).
pub fn tool_or_skip(name: &str, test: &str, install: &str) -> Option<PathBuf> {
    let found = find_in_path(name);
    if found.is_none() {
        skip(test, &format!("{name} is not installed ({install})"));
    }
    found
}

pub struct Browser {
    path: PathBuf,
}

impl Browser {
    pub fn find(test: &str) -> Option<Browser> {
        let path = tool_or_skip(
            "chromium",
            test,
            "apt-get install chromium; .ci/run does it",
        )?;
        Some(Browser { path })
    }

    /// The document as Chromium parsed it (`--dump-dom`).
    pub fn dom(&self, url: &str) -> String {
        let out = self.run(&["--dump-dom".into(), url.into()]);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A `width`×`height` screenshot of `url`, kept at `path`; `dark` asks for the dark
    /// colour scheme.
    pub fn screenshot(
        &self,
        url: &str,
        (width, height): (u32, u32),
        dark: bool,
        path: &Path,
    ) -> Image {
        let mut args = vec![
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".to_string(),
            format!("--screenshot={}", path.display()),
        ];
        if dark {
            args.push("--force-dark-mode".into());
        }
        args.push(url.into());
        self.run(&args);
        let png = std::fs::read(path).expect("the screenshot was written");
        Image::decode(&png)
    }

    /// Run the browser headless on a fresh profile, at most [`BROWSER_LIMIT`]; its stdout.
    fn run(&self, args: &[String]) -> Vec<u8> {
        let profile = temp_dir("chromium-profile");
        let mut child = Command::new(&self.path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let mut stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
            out
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > BROWSER_LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within {BROWSER_LIMIT:?}: {args:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_dir_all(&profile);
        assert!(status.success(), "chromium {args:?}: {status}");
        reader.join().unwrap_or_default()
    }
}

/// An RGB image decoded from an 8-bit RGB or RGBA PNG (what Chromium writes).
pub struct Image {
    pub width: usize,
    pub height: usize,
    pixels: Vec<[u8; 3]>,
}

impl Image {
    pub fn decode(png: &[u8]) -> Image {
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let (mut width, mut height, mut channels) = (0, 0, 0);
        let mut data = Vec::new();
        let mut at = 8;
        while at + 8 <= png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes")) as usize;
            let kind = &png[at + 4..at + 8];
            let body = &png[at + 8..at + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(body[0..4].try_into().expect("4 bytes")) as usize;
                    height = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes")) as usize;
                    assert_eq!(body[8], 8, "8 bits per channel");
                    channels = match body[9] {
                        2 => 3,
                        6 => 4,
                        other => panic!("PNG colour type {other} is not RGB(A)"),
                    };
                }
                b"IDAT" => data.extend_from_slice(body),
                _ => {}
            }
            at += 12 + len;
        }
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&data).expect("PNG data inflates");
        let rows = unfilter(&raw, width * channels, channels, height);
        let pixels = rows.chunks(channels).map(|p| [p[0], p[1], p[2]]).collect();
        Image {
            width,
            height,
            pixels,
        }
    }

    pub fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.pixels[y * self.width + x]
    }

    /// How many pixels are within `tolerance` of `colour` in every channel.
    pub fn count_near(&self, colour: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .iter()
            .filter(|p| (0..3).all(|i| p[i].abs_diff(colour[i]) <= tolerance))
            .count()
    }
}

/// Undo PNG's per-row filters (none, sub, up, average, Paeth).
fn unfilter(raw: &[u8], stride: usize, bpp: usize, height: usize) -> Vec<u8> {
    let mut out = vec![0u8; stride * height];
    for y in 0..height {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let (filter, src) = (line[0], &line[1..]);
        for x in 0..stride {
            let a = if x >= bpp {
                out[y * stride + x - bpp]
            } else {
                0
            };
            let b = if y > 0 { out[(y - 1) * stride + x] } else { 0 };
            let c = if x >= bpp && y > 0 {
                out[(y - 1) * stride + x - bpp]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => paeth(a, b, c),
                other => panic!("PNG filter {other}"),
            };
            out[y * stride + x] = src[x].wrapping_add(predicted);
        }
    }
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
