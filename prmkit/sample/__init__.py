"""The sample stage: draw N solutions per problem from a policy, cut them into steps and grade them."""
