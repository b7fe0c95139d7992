{#- A few quarantined values per reason, as exported, for the report's data-quality page:
    the most frequent offending values first. Values are data: the report shows them as
    text (escaped), and long ones are cut here so that a page stays a page. -#}
{% set max_length = var('quarantine_example_max_length', 120) %}

with

quarantine as (

    select * from {{ ref('customer_quarantine') }}

),

offending_values as (

    -- the column whose value broke the rule, and that value exactly as exported
    select
        quarantine_reason,
        source_row_number,
        case
            when quarantine_reason = 'missing_customer_id' then 'ID'
            when quarantine_reason in ('unparseable_age', 'age_out_of_range') then 'Age'
            when quarantine_reason like '%work_experience%' then 'Work_Experience'
            when quarantine_reason like '%family_size%' then 'Family_Size'
            when quarantine_reason = 'unparseable_ever_married' then 'Ever_Married'
            when quarantine_reason = 'unparseable_graduated' then 'Graduated'
            when quarantine_reason = 'unknown_gender' then 'Gender'
            when quarantine_reason = 'unknown_profession' then 'Profession'
            when quarantine_reason = 'unknown_spending_score' then 'Spending_Score'
            when quarantine_reason = 'unknown_var_1' then 'Var_1'
        end as column_name,
        case
            when quarantine_reason = 'malformed_row' then source_line
            when quarantine_reason = 'missing_customer_id' then source_id
            when quarantine_reason in ('unparseable_age', 'age_out_of_range') then source_age
            when quarantine_reason like '%work_experience%' then source_work_experience
            when quarantine_reason like '%family_size%' then source_family_size
            when quarantine_reason = 'unparseable_ever_married' then source_ever_married
            when quarantine_reason = 'unparseable_graduated' then source_graduated
            when quarantine_reason = 'unknown_gender' then source_gender
            when quarantine_reason = 'unknown_profession' then source_profession
            when quarantine_reason = 'unknown_spending_score' then source_spending_score
            when quarantine_reason = 'unknown_var_1' then source_var_1
        end as source_value

    from quarantine

),

value_counts as (

    select
        quarantine_reason,
        column_name,
        source_value,
        count(*) as rows,
        min(source_row_number) as first_source_row_number

    from offending_values
    group by quarantine_reason, column_name, source_value

),

ranked as (

    select
        *,
        row_number() over (
            partition by quarantine_reason
            order by rows desc, first_source_row_number
        ) as example_rank

    from value_counts

),

final as (

    select
        quarantine_reason,
        cast(example_rank as integer) as example_rank,
        column_name,
        case
            when length(source_value) > {{ max_length }}
                then left(source_value, {{ max_length - 1 }}) || '…'
            else source_value
        end as source_value,
        coalesce(length(source_value) > {{ max_length }}, false) as is_truncated,
        cast(rows as bigint) as rows,
        first_source_row_number

    from ranked
    where example_rank <= {{ var('quarantine_examples_per_reason', 3) }}

)

select * from final
