#!/usr/bin/env python3
"""make_mmlu.py - writes mmlu_SUBJECT.json for the 57 subjects of lm-eval 0.4.13's mmlu/default
(the subject list and descriptions as its YAMLs have them: "The following are multiple choice
questions (with answers) about SUBJECT with spaces.\\n\\n"). Run from this directory."""
import json

SUBJECTS = """abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology
college_chemistry college_computer_science college_mathematics college_medicine college_physics
computer_security conceptual_physics econometrics electrical_engineering elementary_mathematics
formal_logic global_facts high_school_biology high_school_chemistry high_school_computer_science
high_school_european_history high_school_geography high_school_government_and_politics
high_school_macroeconomics high_school_mathematics high_school_microeconomics high_school_physics
high_school_psychology high_school_statistics high_school_us_history high_school_world_history
human_aging human_sexuality international_law jurisprudence logical_fallacies machine_learning
management marketing medical_genetics miscellaneous moral_disputes moral_scenarios nutrition
philosophy prehistory professional_accounting professional_law professional_medicine
professional_psychology public_relations security_studies sociology us_foreign_policy virology
world_religions""".split()

for s in SUBJECTS:
    d = {
        "name": "mmlu_" + s, "type": "multiple_choice",
        "file": f"mmlu_{s}_test.jsonl", "fewshot_file": f"mmlu_{s}_dev.jsonl",
        "num_fewshot": 5, "fewshot_sampler": "first_n",
        "description": f"The following are multiple choice questions (with answers) about {s.replace('_', ' ')}.\n\n",
        "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
        "doc_to_choice": ["A", "B", "C", "D"],
        "doc_to_target": "answer",
        "metrics": ["acc"],
    }
    with open(f"mmlu_{s}.json", "w") as f:
        json.dump(d, f, indent=1, ensure_ascii=False)
        f.write("\n")
print(len(SUBJECTS), "subjects")
