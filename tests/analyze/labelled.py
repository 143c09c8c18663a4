"""A small hand-labelled fixture: reasoning steps (in the styles of the atomic format, LLaVA-CoT
stages and plain chain-of-thought) and the capability each mainly exercises."""

from __future__ import annotations

LABELLED: list[tuple[str, str]] = [
    # image_recognition
    ("The image shows a right triangle with legs labeled 3 cm and 4 cm.", "image_recognition"),
    ("In the bar chart, the bar for March reaches 45 units.", "image_recognition"),
    ("From the diagram we can see that angle ABC is marked as 40 degrees.", "image_recognition"),
    # variable_definition
    ("Let x be the number of apples Tom has at the start.", "variable_definition"),
    ("Denote the width of the rectangle by w; then the length is 2w.", "variable_definition"),
    ("We are given that the train travels 120 km and takes t hours.", "variable_definition"),
    # calculation
    ("Add the first two numbers: 7 + 5 = 12.", "calculation"),
    ("Multiply 12 by 3 to get 36.", "calculation"),
    ("Now compute 36 - 9 = 27.", "calculation"),
    ("Simplify the fraction 18/24 to 3/4.", "calculation"),
    # formula_application
    ("Using the Pythagorean theorem, the hypotenuse is sqrt(3^2 + 4^2).", "formula_application"),
    ("Apply the area formula for a circle, A = pi * r^2.", "formula_application"),
    ("By the distributive law, 3(x + 2) becomes 3x + 6.", "formula_application"),
    # logical_deduction
    ("Since both angles are equal, the triangle must be isosceles.", "logical_deduction"),
    (
        "If Tom gives away more than he has, then he would have a negative count, which cannot happen.",
        "logical_deduction",
    ),
    (
        "Because the sum is even, one of the two numbers is even as well, which means the other is even too.",
        "logical_deduction",
    ),
    # knowledge_recall
    ("Recall that a week has 7 days.", "knowledge_recall"),
    ("We know that water boils at 100 degrees Celsius at sea level.", "knowledge_recall"),
    ("By definition, a prime number has exactly two divisors.", "knowledge_recall"),
    # verification
    ("Let me verify: 27 + 9 = 36, which matches the earlier total.", "verification"),
    ("Check the result by substituting x = 4 back into the equation.", "verification"),
    ("Double-check the units: both lengths are in centimetres, so the result is consistent.", "verification"),
    # conclusion
    ("To sum up, the final answer is 27.", "conclusion"),
    ("The answer is 12.", "conclusion"),
    ("Therefore, the answer is \\boxed{5}.", "conclusion"),
]
