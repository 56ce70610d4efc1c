//! Training checkpoints shared by every model family: module and optimizer state as burnpack
//! files plus a `state.json` that commits them. Every file is written under a fresh name and
//! `state.json` is replaced atomically last, so a run killed at any instant resumes from the
//! last complete checkpoint.

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Progress of a training run, saved with every checkpoint.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// Seed of the run.
    pub seed: u64,
    /// Epochs the run is set to train.
    pub epochs: usize,
    /// Completed epochs.
    pub epoch: usize,
    /// Completed steps of the current epoch.
    pub step: usize,
    /// Training wall time over all sessions of the run, seconds.
    pub elapsed_seconds: f64,
    /// Per epoch: (epoch, training metric, validation metric).
    pub history: Vec<(usize, f64, f64)>,
    /// The running figures of the epoch in progress (what its history row is made of),
    /// saved with a mid-epoch checkpoint so a resumed epoch reports what the uninterrupted
    /// one would.
    #[serde(default)]
    pub epoch_sums: Vec<f64>,
    /// Files of the last checkpoint (module, optimizer), relative to the run directory.
    pub files: Vec<String>,
    #[serde(skip, default = "Instant::now")]
    since: Instant,
}

impl TrainState {
    /// State of a new run.
    pub fn new(seed: u64, epochs: usize) -> Self {
        TrainState {
            seed,
            epochs,
            epoch: 0,
            step: 0,
            elapsed_seconds: 0.0,
            history: Vec::new(),
            epoch_sums: Vec::new(),
            files: Vec::new(),
            since: Instant::now(),
        }
    }

    /// Adds the wall time since the last call (or since creation or loading).
    pub fn add_elapsed(&mut self) {
        self.elapsed_seconds += self.since.elapsed().as_secs_f64();
        self.since = Instant::now();
    }
}

/// A run directory holding checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// Checkpoints under `dir`.
    pub fn new(dir: &Path) -> Self {
        Checkpoint { dir: dir.to_path_buf() }
    }

    /// Saves modules (in order) and optimizers (in order) and commits them with `state`.
    pub fn save_all<M: Module + Clone>(&self, state: &mut TrainState, modules: &[&M], optims: &[&ModuleOptimizer]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create {}", self.dir.display()))?;
        let tag = format!("e{:04}s{:06}", state.epoch, state.step);
        let mut files = Vec::new();
        for (i, m) in modules.iter().enumerate() {
            let name = format!("module{i}-{tag}.bpk");
            (*m).clone().save_file(self.dir.join(&name)).map_err(|e| anyhow::anyhow!("saving checkpoint {name}: {e:?}"))?;
            files.push(name);
        }
        for (i, o) in optims.iter().enumerate() {
            let name = format!("optim{i}-{tag}.bpk");
            o.save(self.dir.join(&name)).map_err(|e| anyhow::anyhow!("saving checkpoint {name}: {e:?}"))?;
            files.push(name);
        }
        let old = std::mem::replace(&mut state.files, files);
        crate::data::write_atomic(&self.dir.join("state.json"), serde_json::to_string_pretty(state)?.as_bytes())?;
        for f in old.iter().filter(|f| !state.files.contains(f)) {
            std::fs::remove_file(self.dir.join(f)).ok();
        }
        Ok(())
    }

    /// Saves one module and one optimizer.
    pub fn save<M: Module + Clone>(&self, state: &mut TrainState, model: &M, optim: &ModuleOptimizer) -> Result<()> {
        self.save_all(state, &[model], &[optim])
    }

    /// The committed state, if the directory holds a checkpoint.
    pub fn state(&self) -> Result<Option<TrainState>> {
        let path = self.dir.join("state.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}: corrupt checkpoint state", path.display()))?))
    }

    /// Loads the committed checkpoint into freshly built `modules` and `optims` (same order as
    /// saved). `None` when there is no checkpoint.
    pub fn load_all<M: Module>(&self, modules: Vec<M>, optims: Vec<ModuleOptimizer>) -> Result<Option<Restored<M>>> {
        let Some(state) = self.state()? else { return Ok(None) };
        let (nm, no) = (modules.len(), optims.len());
        anyhow::ensure!(
            state.files.len() == nm + no,
            "checkpoint in {} holds {} files, expected {}",
            self.dir.display(),
            state.files.len(),
            nm + no
        );
        let modules = modules
            .into_iter()
            .zip(&state.files[..nm])
            .map(|(m, f)| {
                let path = self.dir.join(f);
                m.try_load_file(&path).map_err(|e| {
                    anyhow::anyhow!("loading {}: {e:?} (resume with the model arguments the run started with)", path.display())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let optims = optims
            .into_iter()
            .zip(&state.files[nm..])
            .map(|(o, f)| o.load(self.dir.join(f)).map_err(|e| anyhow::anyhow!("loading {f}: {e:?}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((state, modules, optims)))
    }

    /// Loads one module and one optimizer.
    pub fn load<M: Module>(&self, model: M, optim: ModuleOptimizer) -> Result<Option<(TrainState, M, ModuleOptimizer)>> {
        Ok(self.load_all(vec![model], vec![optim])?.map(|(s, mut m, mut o)| (s, m.remove(0), o.remove(0))))
    }
}

/// What [`Checkpoint::load_all`] restores: the run's state, the modules and their optimizers.
pub type Restored<M> = (TrainState, Vec<M>, Vec<ModuleOptimizer>);
