with

customers as (

    select * from {{ ref('stg_customers') }}

),

rejected_rows as (

    select * from {{ ref('stg_customers_rejected') }}

),

category_labels as (

    select * from {{ ref('category_labels') }}

),

labelled as (

    select
        customers.*,
        gender_labels.label as gender,
        profession_labels.label as profession,
        spending_labels.label as spending_score,
        var_1_labels.label as var_1

    from customers
    left join category_labels as gender_labels
        on gender_labels.column_name = 'gender'
        and gender_labels.source_value = customers.gender_key
    left join category_labels as profession_labels
        on profession_labels.column_name = 'profession'
        and profession_labels.source_value = customers.profession_key
    left join category_labels as spending_labels
        on spending_labels.column_name = 'spending_score'
        and spending_labels.source_value = customers.spending_score_key
    left join category_labels as var_1_labels
        on var_1_labels.column_name = 'var_1'
        and var_1_labels.source_value = customers.var_1_key

),

validated as (

    -- the first rule a row breaks is its reason; a row breaking none is usable
    select
        *,
        case
            when coalesce(
                customer_id, gender_key, ever_married_text, age_text, graduated_text,
                profession_key, work_experience_text, spending_score_key, family_size_text, var_1_key
            ) is null then 'empty_row'
            when customer_id is null then 'missing_customer_id'
            when age_text is not null and age is null then 'unparseable_age'
            when not (age between {{ var('min_age') }} and {{ var('max_age') }}) then 'age_out_of_range'
            when work_experience_text is not null and work_experience is null then 'unparseable_work_experience'
            when work_experience < 0 then 'negative_work_experience'
            when not (work_experience <= {{ var('max_work_experience') }}) then 'work_experience_out_of_range'
            when family_size_text is not null and family_size is null then 'unparseable_family_size'
            when not (family_size between 1 and {{ var('max_family_size') }}) then 'family_size_out_of_range'
            when ever_married_text is not null and ever_married is null then 'unparseable_ever_married'
            when graduated_text is not null and graduated is null then 'unparseable_graduated'
            when gender_key is not null and gender is null then 'unknown_gender'
            when profession_key is not null and profession is null then 'unknown_profession'
            when spending_score_key is not null and spending_score is null then 'unknown_spending_score'
            when var_1_key is not null and var_1 is null then 'unknown_var_1'
        end as quarantine_reason

    from labelled

),

malformed as (

    -- records that could not be split into fields: no value to validate, kept as raw text
    select
        source_row_number,
        source_line_number,
        source_line,
        'malformed_row' as quarantine_reason

    from rejected_rows

),

final as (

    select * from validated
    union all by name
    select * from malformed

)

select * from final
