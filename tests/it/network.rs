//! The network as a new user meets it: a registry that stops answering (`--timeout`, retries,
//! a clear error), a cached blob damaged on disk (refetched, not pushed forever), and TLS or
//! scheme mistakes in `[registry."HOST"]` (hints that say what to set), plus a warning for a
//! `[registry."HOST"]` table nothing uses.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::context::{describe, flat, mirrorfile_header, stderr};
use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
use crate::support::images::{sha256, ImageSpec};
use crate::support::lab::{line_of, Lab};
use crate::support::pki::Pki;
use crate::support::registry::{Options, Registry};

/// `[target]` `tgt`, source `up`, both plain HTTP, one image.
fn mirrorfile(lab: &Lab, up: &str, tgt: &str, image: &str) {
    let text = format!(
        "{}\n[[images]]\nref = \"{up}/{image}\"\n",
        mirrorfile_header(up, tgt, None)
    );
    lab.ctx.write_mirrorfile(&text);
}

#[test]
fn a_stalled_download_and_a_stalled_upload_time_out_and_are_retried() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/slow:1",
        &ImageSpec::single("slow", "linux/amd64").layer_bytes(40_000),
    );
    let up = FaultProxy::start(&lab.up());
    let tgt = FaultProxy::start(&lab.tgt());
    let layer = image.manifests[0].layers[0].clone();
    // No answer for 5 s to the first GET of the layer and to the first upload PUT.
    up.add(Rule::new("GET", &layer.digest, Fault::Delay(Duration::from_secs(5))).times(1));
    tgt.add(
        Rule::new(
            "PUT",
            "/blobs/uploads/",
            Fault::Delay(Duration::from_secs(5)),
        )
        .times(1),
    );
    mirrorfile(&lab, &up.host(), &tgt.host(), "lab/slow:1");

    let out = lab.ctx.cmd(&[
        "--timeout",
        "1",
        "--retries",
        "2",
        "--progress",
        "plain",
        "apply",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{}",
        describe(&out),
        up.describe(),
        tgt.describe()
    );
    lab.assert_full_copy("lab/slow:1", &image);
    // The stalled GET and the stalled upload each timed out once and were tried again (the
    // proxy logs a delayed request only once it is answered, so stderr is the witness).
    let err = stderr(&out);
    let retried = |what: &str| {
        err.lines()
            .filter(|l| l.contains("retry 1 of") && l.contains(what))
            .filter(|l| l.contains("no answer for 1 s (see --timeout)"))
            .count()
    };
    let get = format!("GET blob lab/slow@{}", layer.digest);
    assert_eq!(retried(&get), 1, "{err}");
    assert_eq!(retried("upload blob lab/slow@"), 1, "{err}");
    assert_eq!(err.matches("no answer").count(), 2, "{err}");
}

#[test]
fn a_target_that_never_answers_fails_plan_naming_host_and_timeout() {
    let lab = Lab::new();
    lab.seed("lab/hung:1", &ImageSpec::single("hung", "linux/amd64"));
    let tgt = FaultProxy::start(&lab.tgt());
    tgt.add(Rule::new("", "/", Fault::Delay(Duration::from_secs(20))));
    mirrorfile(&lab, &lab.up(), &tgt.host(), "lab/hung:1");

    let out = lab
        .ctx
        .cmd(&["--timeout", "1", "--retries", "1", "plan", "-q"]);
    let err = flat(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(err.contains("gave up after 2 attempts"), "{err}");
    assert!(err.contains(&tgt.host()), "{err}");
    assert!(err.contains("no answer for 1 s (see --timeout)"), "{err}");
}

#[test]
fn a_damaged_cached_blob_is_fetched_again_instead_of_pushed() {
    let mut lab = Lab::new();
    let image = lab.seed(
        "lab/rot:1",
        &ImageSpec::single("rot", "linux/amd64").layer_bytes(30_000),
    );
    mirrorfile(&lab, &lab.up(), &lab.tgt(), "lab/rot:1");
    lab.ctx.cmd_ok(&["apply"]);
    // Flip a byte of the cached layer.
    let layer = image.manifests[0].layers[0].clone();
    let hex = layer.digest.trim_start_matches("sha256:");
    let cached = lab.ctx.work().join("cache/blobs/sha256").join(hex);
    let mut bytes = fs::read(&cached).expect("cached layer");
    bytes[100] ^= 0xff;
    fs::write(&cached, &bytes).expect("damage the cached layer");

    // A fresh target: every blob is pushed from the cache.
    lab.target = Registry::start();
    mirrorfile(&lab, &lab.up(), &lab.tgt(), "lab/rot:1");
    let out = lab.ctx.cmd(&["--retries", "0", "apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    lab.assert_full_copy("lab/rot:1", &image);
    let on_disk = lab
        .target
        .blob_data_on_disk(&layer.digest)
        .expect("layer pushed");
    assert_eq!(sha256(&on_disk), layer.digest);
    // The cache holds the right bytes again, and the user was told.
    assert_eq!(sha256(&fs::read(&cached).expect("refetched")), layer.digest);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the cached copy of {} was damaged", layer.digest))
            && err.contains("fetched it again"),
        "{err}"
    );
}

#[test]
fn a_damaged_cached_blob_is_fetched_again_for_a_layout_target() {
    let lab = Lab::new();
    let image = lab.seed(
        "lab/rotl:1",
        &ImageSpec::single("rotl", "linux/amd64").layer_bytes(30_000),
    );
    mirrorfile(&lab, &lab.up(), &lab.tgt(), "lab/rotl:1");
    lab.ctx.cmd_ok(&["apply"]);
    let layer = image.manifests[0].layers[0].clone();
    let hex = layer.digest.trim_start_matches("sha256:");
    let cached = lab.ctx.work().join("cache/blobs/sha256").join(hex);
    let mut bytes = fs::read(&cached).expect("cached layer");
    bytes[10] ^= 0x01;
    fs::write(&cached, &bytes).expect("damage the cached layer");

    let up = lab.up();
    lab.ctx.write_mirrorfile(&format!(
        "[target]\nlayout = \"out\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n[cache]\ndir = \"cache\"\n\n\
         [[images]]\nref = \"{up}/lab/rotl:1\"\n"
    ));
    let out = lab.ctx.cmd(&["--retries", "0", "apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let written =
        fs::read(lab.ctx.work().join("out/blobs/sha256").join(hex)).expect("layer in layout");
    assert_eq!(sha256(&written), layer.digest);
    assert!(stderr(&out).contains("was damaged"), "{}", describe(&out));
}

/// A bundle target `bundle` filled from `image` on the upstream registry; with the first layer
/// of `built` damaged in the cache after one apply. Returns the damaged file and the layer.
fn bundle_with_damaged_cache(lab: &Lab, image: &str, bundle: &str) -> (PathBuf, String) {
    let up = lab.up();
    let built = lab.seed(
        image,
        &ImageSpec::single("rotb", "linux/amd64").layer_bytes(30_000),
    );
    lab.ctx.write_mirrorfile(&format!(
        "[target]\nbundle = \"{bundle}\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
         [cache]\ndir = \"cache\"\n\n[[images]]\nref = \"{up}/{image}\"\n"
    ));
    lab.ctx.cmd_ok(&["apply"]);
    let layer = built.manifests[0].layers[0].digest.clone();
    let cached = lab
        .ctx
        .work()
        .join("cache/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&cached).expect("cached layer");
    bytes[10] ^= 0x01;
    fs::write(&cached, &bytes).expect("damage the cached layer");
    (cached, layer)
}

#[test]
fn a_damaged_cached_blob_is_fetched_again_for_a_bundle_target() {
    let lab = Lab::new();
    let (cached, layer) = bundle_with_damaged_cache(&lab, "lab/rotb:1", "out.tar.zst");
    let bundle = lab.ctx.work().join("out.tar.zst");
    let first = sha256(&fs::read(&bundle).expect("first bundle"));
    fs::remove_file(&bundle).expect("remove the first bundle");

    let out = lab.ctx.cmd(&["--retries", "0", "apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Written from good bytes: the same file as from an undamaged cache.
    assert_eq!(
        sha256(&fs::read(&bundle).expect("second bundle")),
        first,
        "{}",
        describe(&out)
    );
    assert_eq!(sha256(&fs::read(&cached).expect("refetched")), layer);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the cached copy of {layer} was damaged"))
            && err.contains("fetched it again"),
        "{err}"
    );
}

#[test]
fn a_damaged_cached_blob_offline_fails_the_bundle_naming_it() {
    let lab = Lab::new();
    let (cached, layer) = bundle_with_damaged_cache(&lab, "lab/rotc:1", "out.tar");
    let bundle = lab.ctx.work().join("out.tar");
    fs::remove_file(&bundle).expect("remove the first bundle");

    let out = lab.ctx.cmd(&["--offline", "apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!bundle.exists(), "no bundle from a damaged cache");
    assert!(!cached.exists(), "the damaged copy is gone from the cache");
    let err = flat(&out.stderr);
    assert!(
        err.contains(&format!("the cached copy of {layer} was damaged"))
            && err.contains("was removed from the cache; fetching it again from")
            && err.contains(&format!("offline: blob {layer}")),
        "{err}"
    );
    assert!(!err.contains("fetched it again"), "{err}");
}

/// A TLS registry (CA in `ca.pem`) and a plain one, with an image upstream.
struct Scene {
    lab: Lab,
    secure: Registry,
    _pki: Pki,
}

impl Scene {
    fn new() -> Scene {
        let pki = Pki::new();
        let secure = Registry::start_with(Options {
            tls: Some((pki.server_cert(), pki.server_key())),
            ..Options::default()
        });
        let lab = Lab::new();
        fs::copy(pki.ca(), lab.ctx.work().join("ca.pem")).expect("copy CA");
        lab.seed("lab/sash:3.8", &ImageSpec::single("sash", "linux/amd64"));
        Scene {
            lab,
            secure,
            _pki: pki,
        }
    }

    /// `plan` to `target` with `keys` under its `[registry]` table; returns stderr.
    fn plan_to(&self, target: &str, keys: &str) -> String {
        let up = self.lab.up();
        self.lab.ctx.write_mirrorfile(&format!(
            "[target]\nregistry = \"{target}\"\n\n[registry.\"{up}\"]\ntls = \"http\"\n\n\
             [registry.\"{target}\"]\n{keys}\n\n[cache]\ndir = \"cache\"\n\n\
             [[images]]\nref = \"{up}/lab/sash:3.8\"\n"
        ));
        let out = self.lab.ctx.cmd(&["--retries", "0", "plan"]);
        assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
        flat(&out.stderr)
    }
}

#[test]
fn scheme_and_certificate_mistakes_get_hints_that_say_what_to_set() {
    let s = Scene::new();
    let sec = s.secure.host();
    // Plain HTTP to an HTTPS registry.
    let err = s.plan_to(&sec, "tls = \"http\"");
    assert!(
        err.contains(&format!("{sec} speaks HTTPS: remove `tls = \"http\"`")),
        "{err}"
    );
    // HTTPS to a plain-HTTP registry: `tls = "http"` is the advice, first.
    let plain = s.lab.tgt();
    let err = s.plan_to(&plain, "");
    let hint = format!(
        "{plain} answered in plain HTTP: set `tls = \"http\"` under `[registry.\"{plain}\"]`"
    );
    assert!(err.contains(&hint), "{err}");
    assert!(!err.contains("private CA"), "{err}");
    // An unknown CA: our error with its advice, and no raw log line of rustls or reqwest.
    let err = s.plan_to(&sec, "tls = \"verify\"");
    assert!(err.contains("uses a private CA"), "{err}");
    assert!(!err.contains("ERROR"), "{err}");
    assert_eq!(err.matches("UnknownIssuer").count(), 1, "{err}");
}

#[test]
fn a_registry_table_nothing_uses_is_warned_about_with_its_line() {
    let lab = Lab::new();
    let image = lab.seed("lab/typo:1", &ImageSpec::single("typo", "linux/amd64"));
    let text = format!(
        "{}\n[registry.\"127.0.0.1:530\"]\ntls = \"http\"\n\n[[images]]\nref = \"{}/lab/typo:1\"\n",
        mirrorfile_header(&lab.up(), &lab.tgt(), None),
        lab.up()
    );
    lab.ctx.write_mirrorfile(&text);
    let out = lab.ctx.cmd_ok(&["apply"]);
    let line = line_of(&text, "[registry.\"127.0.0.1:530\"]");
    let warning = format!(
        "[registry.\"127.0.0.1:530\"] (mirrorfile.toml:{line}) matches no image source or the target"
    );
    let err = stderr(&out);
    assert!(err.contains(&warning), "{err}");
    // The tables that are used are not mentioned.
    assert_eq!(err.matches("matches no image source").count(), 1, "{err}");
    lab.assert_full_copy("lab/typo:1", &image);
}
