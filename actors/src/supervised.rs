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

/// The text a pretraining sequence reads after its prompt (`[pretrain] text`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PretrainText {
    /// The gold answer alone: one or a few tokens per image.
    #[default]
    Answer,
    /// A caption: the sample's description of what its images show (the thinking
    /// of its template: the objects, text or values a solver reads off the image),
    /// then the gold answer. Every word of it depends on the image, so the vision
    /// encoder gets a dense signal, as captioning data gives in the paper's
    /// pretraining.
    Caption,
}

/// What a supervised stage trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisedKind {
    /// Multimodal pretraining: the prompt (images and text) and the chosen text
    /// read as one image–text sequence, loss on all of its text.
    Pretrain(PretrainText),
    /// Long-CoT SFT: the prompt answered with the sample's GLM-format template
    /// (`<think>…</think><answer>…<|begin_of_box|>X<|end_of_box|></answer>`), loss on
    /// the response only.
    Sft,
}

impl SupervisedKind {
    /// The stage's name in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            SupervisedKind::Pretrain(_) => "pretrain",
            SupervisedKind::Sft => "sft",
        }
    }
}

/// The next-token example of `sample` for a stage of `kind`.
pub fn lm_example(sample: &Sample, kind: SupervisedKind) -> LmExample {
    let prompt = prompt_of(sample);
    match kind {
        SupervisedKind::Pretrain(text) => LmExample {
            prompt,
            response: match (text, thinking(&sample.template)) {
                (PretrainText::Caption, Some(think)) if !think.trim().is_empty() => {
                    format!("{} {}", think.trim(), sample.gold)
                }
                _ => sample.gold.clone(),
            },
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

/// The thinking of a GLM-format template: the text between `<think>` and
/// `</think>`, if both are there in that order.
fn thinking(template: &str) -> Option<&str> {
    let start = template.find("<think>")? + "<think>".len();
    let len = template.get(start..)?.find("</think>")?;
    template.get(start..start + len)
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
        let pre = lm_example(&s, SupervisedKind::Pretrain(PretrainText::Answer));
        assert!(pre.train_prompt);
        assert_eq!(pre.response, s.gold);
        // A caption describes the scene (the template's thinking), then answers.
        let cap = lm_example(&s, SupervisedKind::Pretrain(PretrainText::Caption));
        assert!(cap.train_prompt);
        assert!(cap.response.starts_with("I look for "), "{}", cap.response);
        assert!(
            cap.response.ends_with(&format!(". {}", s.gold)),
            "{}",
            cap.response
        );
        assert!(!cap.response.contains("<think>") && !cap.response.contains("<|begin_of_box|>"));
        assert!(s
            .template
            .contains(cap.response.trim_end_matches(&s.gold).trim()));
        assert_eq!(pre.prompt.images.len(), s.images.len());
        let sft = lm_example(&s, SupervisedKind::Sft);
        assert!(!sft.train_prompt);
        assert_eq!(sft.response, s.template);
        assert!(sft.response.starts_with("<think>"));
    }

    #[test]
    fn a_caption_without_thinking_falls_back_to_the_answer() {
        assert_eq!(
            thinking("<think>a b</think><answer>x</answer>"),
            Some("a b")
        );
        for bad in [
            "no markers",
            "</think> then <think>",
            "<think>never closed",
            "",
        ] {
            assert_eq!(thinking(bad), None, "{bad}");
        }
        let d = domain_by_name("ocr").expect("built-in domain");
        let mut s = d.generate(5, 0.0);
        s.template = "<answer>no thinking</answer>".into();
        let cap = lm_example(&s, SupervisedKind::Pretrain(PretrainText::Caption));
        assert_eq!(cap.response, s.gold);
    }
}
