//! Supervised stages of the recipe (pretrain and SFT) over a run graph: the loader
//! pool resolves each batch's samples, the learner takes a next-token step and
//! publishes the new weights to the replicas.

use std::path::PathBuf;

use rlcs_domains::{Sample, SampleId};
use rlcs_model::{LmExample, StepStats};
use serde::{Deserialize, Serialize};

use crate::driver::{prompt_of, RlDriver};
use crate::singletons::LearnerMsg;
use crate::ActorsError;

/// What a supervised stage trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisedKind {
    /// Multimodal pretraining: the prompt (images and text) and its answer read as
    /// one image–text sequence, loss on all of its text.
    Pretrain,
    /// Long-CoT SFT: the prompt answered with the sample's GLM-format template
    /// (`<think>…</think><answer>…<|begin_of_box|>X<|end_of_box|></answer>`), loss on
    /// the response only.
    Sft,
}

impl SupervisedKind {
    /// The stage's name in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            SupervisedKind::Pretrain => "pretrain",
            SupervisedKind::Sft => "sft",
        }
    }
}

/// The next-token example of `sample` for a stage of `kind`.
pub fn lm_example(sample: &Sample, kind: SupervisedKind) -> LmExample {
    let prompt = prompt_of(sample);
    match kind {
        SupervisedKind::Pretrain => LmExample {
            prompt,
            response: sample.gold.clone(),
            train_prompt: true,
            weight: 1.0,
        },
        SupervisedKind::Sft => LmExample {
            prompt,
            response: sample.template.clone(),
            train_prompt: false,
            weight: 1.0,
        },
    }
}

impl RlDriver<'_> {
    /// Step `step` of a supervised stage: loads `ids` through the loader pool and has
    /// the learner train on their examples (which publishes the new weights).
    pub async fn supervised_step(
        &self,
        kind: SupervisedKind,
        step: u32,
        ids: &[SampleId],
    ) -> Result<StepStats, ActorsError> {
        let samples = self.load(ids).await?;
        let examples: Vec<LmExample> = samples.iter().map(|s| lm_example(s, kind)).collect();
        self.call_learner(|reply| LearnerMsg::Supervised {
            stage: kind.name().to_string(),
            step,
            examples,
            reply,
        })
        .await?
        .map_err(|reason| ActorsError::Actor {
            actor: "learner".into(),
            reason,
        })
    }

    /// Writes the learner's current weights to `path` durably (a stage's hand-off
    /// checkpoint); the bytes written.
    pub async fn save_weights(&self, path: PathBuf) -> Result<u64, ActorsError> {
        self.call_learner(|reply| LearnerMsg::SaveWeights { path, reply })
            .await?
            .map_err(|reason| ActorsError::Actor {
                actor: "learner".into(),
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlcs_domains::domain_by_name;

    #[test]
    fn pretraining_reads_the_answer_and_sft_the_template() {
        let d = domain_by_name("counting").expect("built-in domain");
        let s = d.generate(3, 0.5);
        let pre = lm_example(&s, SupervisedKind::Pretrain);
        assert!(pre.train_prompt);
        assert_eq!(pre.response, s.gold);
        assert_eq!(pre.prompt.images.len(), s.images.len());
        let sft = lm_example(&s, SupervisedKind::Sft);
        assert!(!sft.train_prompt);
        assert_eq!(sft.response, s.template);
        assert!(sft.response.starts_with("<think>"));
    }
}
